"""The risk rules of a running strategy as pure decisions (DOMAIN.md "Risk management semantics").

Each rule is a function of P&L (or a leg's price) and its threshold that returns a `Decision`:
hold, or a breach with its event type, reason, threshold, current value and action. The risk
monitor records the decision as a risk event and acts on it (STYLE.md point 7); nothing here
reads a clock, a database or a price feed.

`evaluate_run` applies them all to one run, in this order, per scope unit (one account, or all
accounts together under the combined scope):

    1. max loss          P&L ≤ −max_loss
    2. trailing stop     armed and P&L ≤ stop
    3. max profit        P&L ≥ max_profit
    4. leg stop loss     per leg, per account
    5. leg target        per leg, per account

Protective rules come first: when several fire on the same tick, the unit gets ONE exit, the first
closing rule in the order. Alert-only breaches never suppress a closing rule (an alert must not
stand in the way of a real stop); they are reported beside it. A leg rule is dropped when the
unit's exit already closes that leg. Account daily limits span runs and are evaluated apart
(`evaluate_account_limits`), before the run rules.

Thresholds compared are recorded signed, as the P&L line they draw: max loss ₹5,000 is
threshold −5,000.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from app.domain.instruments import Action
from app.domain.money import format_inr
from app.domain.price_guard import PriceReliability
from app.domain.risk_pnl import LegPosition, entry_premium_value, leg_pnl
from app.domain.risk_settings import RiskAction, RiskEventType, RiskScope
from app.domain.strategy_settings import LegRiskUnit, TrailingType

PAISA = Decimal("0.01")
HUNDRED = Decimal(100)

UnitKey = int | None  # an account id, or None for the combined scope


def _inr(amount: Decimal) -> str:
    return format_inr(amount, 2)


def _positive(name: str, value: Decimal | None) -> None:
    if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
        raise ValueError(f"{name} must be a finite Decimal > 0, got {value!r}")


# --- Decisions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What one rule says: hold (event_type None), or a breach.

    A breach's `action` says what to do: close_all, close_partial (the losing legs; for a leg
    rule, that leg) or alert_only (send nothing, tell the trader).
    """

    event_type: RiskEventType | None = None
    action: RiskAction | None = None
    reason: str = ""
    threshold: Decimal | None = None
    current_value: Decimal | None = None

    @property
    def breached(self) -> bool:
        return self.event_type is not None


HOLD = Decision()


def max_loss_rule(pnl: Decimal, max_loss: Decimal | None, action: RiskAction) -> Decision:
    """Breach when P&L ≤ −max_loss (exactly at the line is a breach); None: rule off."""
    _positive("max_loss", max_loss)
    if max_loss is None or pnl > -max_loss:
        return HOLD
    return Decision(RiskEventType.MAX_LOSS, action, f"Max loss: P&L {_inr(pnl)} ≤ {_inr(-max_loss)}",
                    -max_loss, pnl)


def max_profit_rule(pnl: Decimal, max_profit: Decimal | None, action: RiskAction) -> Decision:
    """Breach when P&L ≥ max_profit (exactly at the line is a breach); None: rule off."""
    _positive("max_profit", max_profit)
    if max_profit is None or pnl < max_profit:
        return HOLD
    return Decision(RiskEventType.MAX_PROFIT, action, f"Max profit: P&L {_inr(pnl)} ≥ {_inr(max_profit)}",
                    max_profit, pnl)


# --- Scaling by account size --------------------------------------------------------------------

def size_factor(account_quantity_per_leg: int, base_quantity_per_leg: int) -> Fraction:
    """An account's size relative to the strategy's base size (exact: 130 / 65 = 2, 65 / 195 = 1/3).

    Raises:
        ValueError: a quantity <= 0.
    """
    if account_quantity_per_leg <= 0 or base_quantity_per_leg <= 0:
        raise ValueError(f"quantities per leg must be > 0, got {account_quantity_per_leg} and "
                         f"{base_quantity_per_leg}")
    return Fraction(account_quantity_per_leg, base_quantity_per_leg)


def scale_threshold(value: Decimal, factor: Fraction | Decimal | int) -> Decimal:
    """A ₹ threshold set at base size, for an account of `factor` × that size, rounded half-up
    to the paisa (₹1,000 at 1/3 → ₹333.33; ₹1,000.05 at 1/2 → ₹500.03).

    The division is done last so that an exact half is never lost to a rounded factor.
    """
    if isinstance(factor, Fraction):
        scaled = value * factor.numerator / factor.denominator
    else:
        scaled = value * factor
    return scaled.quantize(PAISA, rounding=ROUND_HALF_UP)


# --- Trailing stop ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrailingState:
    """One scope unit's trailing stop: unarmed until P&L > 0; then the peak P&L and the stop."""

    armed: bool = False
    peak: Decimal | None = None
    stop: Decimal | None = None


UNARMED = TrailingState()


def trailing_distance(trailing_type: TrailingType, value: Decimal, entry_premium: Decimal,
                      quantity_per_leg: int) -> Decimal:
    """The trailing stop's distance D in ₹ (DOMAIN.md).

    Args:
        trailing_type: amount (D = value ₹; pass it already scaled to the unit's size),
            percentage (D = value % of the entry premium value) or points (D = value × quantity
            per leg).
        value: the builder's number (> 0; a percentage at most 100).
        entry_premium: the unit's entry premium value (app.domain.risk_pnl.entry_premium_value).
        quantity_per_leg: the unit's units per leg (summed over accounts for combined scope).
    Raises:
        ValueError: value <= 0, a percentage over 100, a negative premium or quantity.
    """
    trailing_type = TrailingType(trailing_type)
    _positive("trailing value", value)
    if entry_premium < 0 or quantity_per_leg < 0:
        raise ValueError("the entry premium value and the quantity per leg must be >= 0")
    if trailing_type is TrailingType.AMOUNT:
        return value
    if trailing_type is TrailingType.PERCENTAGE:
        if value > HUNDRED:
            raise ValueError(f"a trailing percentage must be at most 100, got {value}")
        return entry_premium * value / HUNDRED
    return value * quantity_per_leg


def advance_trailing(state: TrailingState, pnl: Decimal, distance: Decimal) -> TrailingState:
    """The trailing stop after a tick with this P&L.

    Arms on the first P&L > 0 (0 itself does not arm) with peak = P&L and stop = peak − D; then
    the peak follows every new high and the stop = max(previous stop, peak − D): never lowered,
    even if D grows.

    Raises:
        ValueError: distance <= 0 (a stop at the peak would fire on the tick that arms it).
    """
    if distance <= 0:
        raise ValueError(f"a trailing distance must be > 0, got {distance}")
    if not state.armed or state.peak is None or state.stop is None:
        if pnl > 0:
            return TrailingState(True, pnl, pnl - distance)
        return UNARMED
    peak = max(state.peak, pnl)
    return TrailingState(True, peak, max(state.stop, peak - distance))


def trailing_stop_rule(state: TrailingState, pnl: Decimal, action: RiskAction) -> Decision:
    """Breach when the stop is armed and P&L ≤ stop (pass the state already advanced by this tick)."""
    if not state.armed or state.stop is None or pnl > state.stop:
        return HOLD
    return Decision(RiskEventType.TRAILING_SL, action,
                    f"Trailing stop: P&L {_inr(pnl)} ≤ stop {_inr(state.stop)} (peak {_inr(state.peak or pnl)})",
                    state.stop, pnl)


# --- Per-leg stop loss and target ------------------------------------------------------------------

def _leg_distance(entry: Decimal, unit: LegRiskUnit, value: Decimal) -> Decimal:
    _positive("a leg's stop or target", value)
    return value if LegRiskUnit(unit) is LegRiskUnit.POINTS else entry * value / HUNDRED


def leg_stop_price(action: Action, entry: Decimal, unit: LegRiskUnit, value: Decimal) -> Decimal:
    """BUY: entry − d; SELL: entry + d; d = value points or value % of the entry price."""
    return entry - Action(action).sign * _leg_distance(entry, unit, value)


def leg_target_price(action: Action, entry: Decimal, unit: LegRiskUnit, value: Decimal) -> Decimal:
    """BUY: entry + d; SELL: entry − d; d = value points or value % of the entry price."""
    return entry + Action(action).sign * _leg_distance(entry, unit, value)


def _unit_text(unit: LegRiskUnit, value: Decimal) -> str:
    return f"{value} points" if LegRiskUnit(unit) is LegRiskUnit.POINTS else f"{value}%"


def leg_stop_loss_rule(leg_number: int, action: Action, entry: Decimal, ltp: Decimal,
                       unit: LegRiskUnit, value: Decimal) -> Decision:
    """Breach when the LTP reaches the stop: BUY LTP ≤ entry − d, SELL LTP ≥ entry + d.

    The breach's action is close_partial: it closes only this leg.
    """
    stop = leg_stop_price(action, entry, unit, value)
    hit = ltp <= stop if Action(action) is Action.BUY else ltp >= stop
    if not hit:
        return HOLD
    sign = "≤" if Action(action) is Action.BUY else "≥"
    return Decision(RiskEventType.LEG_SL, RiskAction.CLOSE_PARTIAL,
                    f"Leg {leg_number} ({action}) stop loss: LTP {ltp} {sign} {stop} "
                    f"(entry {entry}, {_unit_text(unit, value)})", stop, ltp)


def leg_target_rule(leg_number: int, action: Action, entry: Decimal, ltp: Decimal,
                    unit: LegRiskUnit, value: Decimal) -> Decision:
    """Breach when the LTP reaches the target: BUY LTP ≥ entry + d, SELL LTP ≤ entry − d."""
    target = leg_target_price(action, entry, unit, value)
    hit = ltp >= target if Action(action) is Action.BUY else ltp <= target
    if not hit:
        return HOLD
    sign = "≥" if Action(action) is Action.BUY else "≤"
    return Decision(RiskEventType.LEG_TP, RiskAction.CLOSE_PARTIAL,
                    f"Leg {leg_number} ({action}) target: LTP {ltp} {sign} {target} "
                    f"(entry {entry}, {_unit_text(unit, value)})", target, ltp)


# --- Account daily limits --------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountLimitDecision:
    """An account's daily limit verdict. A breach closes all that account's runs and blocks new
    entries on it for the rest of `trading_day` (IST), i.e. until the next trading day."""

    account_id: int
    trading_day: date
    decision: Decision

    @property
    def closes_all_runs(self) -> bool:
        return self.decision.breached

    @property
    def blocks_entries(self) -> bool:
        return self.decision.breached


def evaluate_account_limits(account_id: int, day_pnl: Decimal, loss_limit: Decimal | None,
                            profit_limit: Decimal | None, trading_day: date) -> AccountLimitDecision:
    """Check Σ P&L of all the account's runs on `trading_day` (the caller sums them) against its
    daily loss limit (breach when ≤ −limit) and profit limit (breach when ≥ limit); None: no limit.
    The loss limit is checked first. The action is always close_all.
    """
    _positive("loss_limit", loss_limit)
    _positive("profit_limit", profit_limit)
    decision = HOLD
    if loss_limit is not None and day_pnl <= -loss_limit:
        decision = Decision(RiskEventType.ACCOUNT_LOSS_LIMIT, RiskAction.CLOSE_ALL,
                            f"Daily loss limit: today's P&L {_inr(day_pnl)} ≤ {_inr(-loss_limit)}; "
                            f"entries blocked until the next trading day", -loss_limit, day_pnl)
    elif profit_limit is not None and day_pnl >= profit_limit:
        decision = Decision(RiskEventType.ACCOUNT_PROFIT_LIMIT, RiskAction.CLOSE_ALL,
                            f"Daily profit limit: today's P&L {_inr(day_pnl)} ≥ {_inr(profit_limit)}; "
                            f"entries blocked until the next trading day", profit_limit, day_pnl)
    return AccountLimitDecision(account_id, trading_day, decision)


# --- Notify once per breach ----------------------------------------------------------------------

@dataclass(frozen=True)
class BreachLatch:
    """Which breaches are standing, so that each is announced once.

    Feed it the keys breached at each (reliable) evaluation; it answers the keys that are new.
    A key re-arms when an evaluation no longer reports it (the condition cleared).
    """

    active: frozenset[Hashable] = frozenset()

    def observe(self, breached: Iterable[Hashable]) -> tuple[BreachLatch, frozenset[Hashable]]:
        current = frozenset(breached)
        return BreachLatch(current), current - self.active


# --- A run's evaluation --------------------------------------------------------------------------

@dataclass(frozen=True)
class LegRiskRule:
    """A strategy leg's stop loss and target, as StrategyLeg.stop_loss() / .target() give them."""

    leg_number: int
    stop_loss: tuple[LegRiskUnit, Decimal] | None = None
    target: tuple[LegRiskUnit, Decimal] | None = None

    def __post_init__(self) -> None:
        for name, rule in (("stop loss", self.stop_loss), ("target", self.target)):
            if rule is not None:
                _positive(f"leg {self.leg_number} {name}", rule[1])


@dataclass(frozen=True)
class RunRiskSettings:
    """A strategy's rules, with ₹ thresholds at base size (Strategy and StrategyLeg columns).

    Raises:
        ValueError: a threshold <= 0, a trailing type without a value or the reverse, a trailing
        percentage over 100, a base quantity <= 0.
    """

    scope: RiskScope
    base_quantity_per_leg: int
    max_loss: Decimal | None = None
    max_loss_action: RiskAction = RiskAction.CLOSE_ALL
    max_profit: Decimal | None = None
    max_profit_action: RiskAction = RiskAction.CLOSE_ALL
    trailing_type: TrailingType | None = None
    trailing_value: Decimal | None = None
    trailing_action: RiskAction = RiskAction.CLOSE_ALL
    leg_rules: tuple[LegRiskRule, ...] = ()

    def __post_init__(self) -> None:
        if self.base_quantity_per_leg <= 0:
            raise ValueError(f"base quantity per leg must be > 0, got {self.base_quantity_per_leg}")
        _positive("max_loss", self.max_loss)
        _positive("max_profit", self.max_profit)
        if (self.trailing_type is None) != (self.trailing_value is None):
            raise ValueError("a trailing stop needs both a type and a value")
        _positive("trailing value", self.trailing_value)
        if self.trailing_type is TrailingType.PERCENTAGE and self.trailing_value is not None \
                and self.trailing_value > HUNDRED:
            raise ValueError(f"a trailing percentage must be at most 100, got {self.trailing_value}")

    def leg_rule(self, leg_number: int) -> LegRiskRule | None:
        return next((rule for rule in self.leg_rules if rule.leg_number == leg_number), None)


@dataclass(frozen=True)
class AccountPosition:
    """One account's part of the run: its size and its legs (usable LTPs on the open ones)."""

    account_id: int
    quantity_per_leg: int
    legs: Sequence[LegPosition] = field(default=())

    def __post_init__(self) -> None:
        if self.quantity_per_leg <= 0:
            raise ValueError(f"account {self.account_id}: quantity per leg must be > 0")
        object.__setattr__(self, "legs", tuple(self.legs))

    @property
    def is_open(self) -> bool:
        return any(leg.open_quantity != 0 for leg in self.legs)


@dataclass(frozen=True)
class RunRiskState:
    """What the rules remember between ticks, for one run only: every trigger starts afresh on
    a new run (LESSONS.md "Data"). Trailing stops by scope unit; the standing breaches."""

    run_id: int
    trailing: tuple[tuple[UnitKey, TrailingState], ...] = ()
    exits: BreachLatch = BreachLatch()
    alerts: BreachLatch = BreachLatch()

    def trailing_for(self, unit: UnitKey) -> TrailingState:
        return dict(self.trailing).get(unit, UNARMED)


def initial_state(run_id: int) -> RunRiskState:
    """The state of a run that has just entered: nothing armed, nothing standing."""
    return RunRiskState(run_id)


@dataclass(frozen=True)
class LegToClose:
    account_id: int
    leg_number: int


@dataclass(frozen=True)
class ScopedDecision:
    """A breach applied to its scope.

    Attributes:
        unit: the account id, or None for the combined scope.
        account_ids: the accounts it concerns (combined: every account with an open leg).
        close_all_legs: close every leg of those accounts (close_all).
        legs_to_close: otherwise exactly these (close_partial: open legs with P&L < 0; a leg
            rule: its leg). Empty with close_all_legs False: nothing to send.
        leg_number: the leg of a leg rule, else None.
        new: the first evaluation reporting this breach (record one risk event, notify once).
    """

    decision: Decision
    unit: UnitKey
    account_ids: tuple[int, ...]
    close_all_legs: bool
    legs_to_close: tuple[LegToClose, ...]
    leg_number: int | None
    new: bool

    @property
    def sends_orders(self) -> bool:
        return self.close_all_legs or bool(self.legs_to_close)

    @property
    def key(self) -> tuple[UnitKey, RiskEventType | None, int | None]:
        return (self.unit, self.decision.event_type, self.leg_number)


@dataclass(frozen=True)
class UnitLimits:
    """The ₹ thresholds one unit was evaluated against (scaled to its size; combined: the sum of
    each account's rounded threshold), so that what a page shows is what fires."""

    key: UnitKey
    max_loss: Decimal | None
    max_profit: Decimal | None


@dataclass(frozen=True)
class RunEvaluation:
    """One tick's verdict on a run.

    Attributes:
        held: prices were unreliable; no rule was evaluated and the state did not change.
        hold_reason: why (PriceReliability.reason).
        exits: closing breaches (close_all / close_partial), at most one strategy rule per unit
            plus leg rules on legs it does not already close.
        alerts: alert-only breaches standing now; notify those with `new`.
        account_pnls: (account id, P&L) for every account (empty when held).
        combined_pnl: Σ of them (None when held).
        state: pass it to the next evaluation of this run.
        limits: each unit's max loss and max profit as evaluated (empty when held).
    """

    run_id: int
    held: bool
    hold_reason: str
    exits: tuple[ScopedDecision, ...]
    alerts: tuple[ScopedDecision, ...]
    account_pnls: tuple[tuple[int, Decimal], ...]
    combined_pnl: Decimal | None
    state: RunRiskState
    limits: tuple[UnitLimits, ...] = ()

    @property
    def alerts_to_notify(self) -> tuple[ScopedDecision, ...]:
        return tuple(alert for alert in self.alerts if alert.new)


@dataclass(frozen=True)
class _Unit:
    key: UnitKey
    accounts: tuple[AccountPosition, ...]
    pnl: Decimal
    max_loss: Decimal | None
    max_profit: Decimal | None
    trailing_amount: Decimal | None  # an amount distance scaled to the unit


def _units(settings: RunRiskSettings, accounts: Sequence[AccountPosition],
           pnls: dict[int, Decimal]) -> list[_Unit]:
    def scaled(value: Decimal | None, account: AccountPosition) -> Decimal | None:
        if value is None:
            return None
        return scale_threshold(value, size_factor(account.quantity_per_leg, settings.base_quantity_per_leg))

    def summed(value: Decimal | None) -> Decimal | None:
        parts = [scaled(value, account) for account in accounts]
        return None if value is None else sum((part or Decimal(0) for part in parts), Decimal(0))

    amount = settings.trailing_value if settings.trailing_type is TrailingType.AMOUNT else None
    if settings.scope is RiskScope.COMBINED:
        return [_Unit(None, tuple(accounts), sum(pnls.values(), Decimal(0)), summed(settings.max_loss),
                      summed(settings.max_profit), summed(amount))]
    return [_Unit(account.account_id, (account,), pnls[account.account_id], scaled(settings.max_loss, account),
                  scaled(settings.max_profit, account), scaled(amount, account)) for account in accounts]


def _unit_distance(settings: RunRiskSettings, unit: _Unit) -> Decimal | None:
    if settings.trailing_type is None or settings.trailing_value is None:
        return None
    value = settings.trailing_value if unit.trailing_amount is None else unit.trailing_amount
    premium = entry_premium_value(leg for account in unit.accounts for leg in account.legs)
    quantity = sum(account.quantity_per_leg for account in unit.accounts)
    distance = trailing_distance(settings.trailing_type, value, premium, quantity)
    return distance if distance > 0 else None  # no premium yet: nothing to trail


def _losing_legs(accounts: Iterable[AccountPosition]) -> tuple[LegToClose, ...]:
    return tuple(LegToClose(account.account_id, leg.leg_number) for account in accounts for leg in account.legs
                 if leg.open_quantity != 0 and leg_pnl(leg).total < 0)


def _leg_decisions(settings: RunRiskSettings, account: AccountPosition) -> list[tuple[int, Decision]]:
    found: list[tuple[int, Decision]] = []
    for leg in account.legs:
        rule = settings.leg_rule(leg.leg_number)
        entry = leg.entry_price
        if rule is None or leg.open_quantity == 0 or entry is None or leg.ltp is None:
            continue
        decision = HOLD
        if rule.stop_loss is not None:
            decision = leg_stop_loss_rule(leg.leg_number, leg.action, entry, leg.ltp, *rule.stop_loss)
        if not decision.breached and rule.target is not None:
            decision = leg_target_rule(leg.leg_number, leg.action, entry, leg.ltp, *rule.target)
        if decision.breached:
            found.append((leg.leg_number, decision))
    return found


def evaluate_run(settings: RunRiskSettings, run_id: int, accounts: Sequence[AccountPosition],
                 state: RunRiskState | None, prices: PriceReliability | None = None) -> RunEvaluation:
    """Evaluate every rule of one run on this tick (see the module docstring for the order).

    Args:
        settings: the strategy's rules.
        run_id: the run; a `state` of another run (or None) is replaced by `initial_state(run_id)`.
        accounts: each account's legs in this run, with usable LTPs on open legs.
        state: what the previous evaluation of this run returned.
        prices: the price guard's verdict on the open legs; unreliable → every rule holds.
    Returns:
        The decisions and the next state. An account with nothing open is not evaluated (there is
        nothing to protect) but its realized P&L counts in the combined P&L.
    Raises:
        ValueError: an account appears twice, or bad settings or legs (see their classes).
    """
    if len({account.account_id for account in accounts}) != len(accounts):
        raise ValueError("each account may appear once in a run's evaluation")
    if state is None or state.run_id != run_id:
        state = initial_state(run_id)
    if prices is not None and not prices.reliable:
        return RunEvaluation(run_id, True, prices.reason, (), (), (), None, state)
    pnls = {account.account_id: sum((leg_pnl(leg).total for leg in account.legs), Decimal(0))
            for account in accounts}
    exits: list[ScopedDecision] = []
    alerts: list[ScopedDecision] = []
    trailing: dict[UnitKey, TrailingState] = {}
    units = _units(settings, accounts, pnls)
    for unit in units:
        open_accounts = tuple(account for account in unit.accounts if account.is_open)
        if not open_accounts:
            continue
        account_ids = tuple(account.account_id for account in open_accounts)
        distance = _unit_distance(settings, unit)
        trail = state.trailing_for(unit.key)
        if distance is not None:
            trail = advance_trailing(trail, unit.pnl, distance)
            trailing[unit.key] = trail
        ordered = (max_loss_rule(unit.pnl, unit.max_loss, settings.max_loss_action),
                   trailing_stop_rule(trail, unit.pnl, settings.trailing_action) if distance is not None else HOLD,
                   max_profit_rule(unit.pnl, unit.max_profit, settings.max_profit_action))
        unit_exit: ScopedDecision | None = None
        for decision in ordered:
            if not decision.breached:
                continue
            if decision.action is RiskAction.ALERT_ONLY:
                alerts.append(ScopedDecision(decision, unit.key, account_ids, False, (), None, False))
            elif unit_exit is None:  # the first closing rule wins; later ones are not repeated
                close_all = decision.action is RiskAction.CLOSE_ALL
                legs = () if close_all else _losing_legs(open_accounts)
                unit_exit = ScopedDecision(decision, unit.key, account_ids, close_all, legs, None, False)
                exits.append(unit_exit)
        for account in open_accounts:
            for leg_number, decision in _leg_decisions(settings, account):
                leg = LegToClose(account.account_id, leg_number)
                if unit_exit is not None and (unit_exit.close_all_legs or leg in unit_exit.legs_to_close):
                    continue  # the unit's exit already closes this leg
                exits.append(ScopedDecision(decision, account.account_id, (account.account_id,), False,
                                            (leg,), leg_number, False))
    exit_latch, new_exits = state.exits.observe(d.key for d in exits)
    alert_latch, new_alerts = state.alerts.observe(d.key for d in alerts)
    exits = [replace(d, new=d.key in new_exits) for d in exits]
    alerts = [replace(d, new=d.key in new_alerts) for d in alerts]
    kept = {key: value for key, value in state.trailing if key not in trailing}
    next_state = RunRiskState(run_id, tuple({**kept, **trailing}.items()), exit_latch, alert_latch)
    return RunEvaluation(run_id, False, "", tuple(exits), tuple(alerts), tuple(pnls.items()),
                         sum(pnls.values(), Decimal(0)), next_state,
                         tuple(UnitLimits(unit.key, unit.max_loss, unit.max_profit) for unit in units))

