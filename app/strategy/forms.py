"""The strategy builder's forms: the one validation of a strategy, for pages and JSON alike.

A browser posts indexed names (legs-0-lots, accounts-1-lot_multiplier); the JSON API turns its
nested body into the same names and reports errors under dotted names (app/strategy/form_data.py).
Nothing reaches the database unless this passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from decimal import Decimal
from typing import Any

from wtforms import (
    BooleanField,
    DecimalField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from app.domain.expiries import ExpiryChoice
from app.domain.instruments import UNDERLYINGS, Action, InstrumentKind, OptionType
from app.domain.risk_settings import ACTION_LABELS, DEFAULT_ACTION, DEFAULT_SCOPE, SCOPE_LABELS, RiskAction, RiskScope
from app.domain.sizing import RiskProfile
from app.domain.strategy_settings import (
    DEFAULT_SPLITS,
    MARKET_CLOSE,
    MARKET_OPEN,
    MAX_LEGS,
    MAX_LIMIT_TIMEOUT,
    MAX_RETRIES,
    MAX_SPLITS,
    MIN_LIMIT_TIMEOUT,
    MIN_SPLITS,
    FailurePolicy,
    LegRiskUnit,
    LimitFallback,
    MarketCondition,
    OrderType,
    Product,
    SupertrendExit,
    SupertrendTimeframe,
    TrailingType,
    time_problems,
)
from app.domain.strikes import MAX_OFFSET, MIN_OFFSET, StrikeMethod, StrikeRule
from app.forms_common import BaseForm, refuse_control_characters
from app.services.strategy.crud import AccountSpec, LegSpec, StrategySpec
from app.strategy.form_data import PARSE_LIMIT, int_or_none

# Bounds that keep every number inside its column and every request small.
MAX_LOTS = 1000
MAX_MONEY = Decimal("100000000000")  # ₹10,000 crore
MAX_PRICE = Decimal("1000000")
MAX_MULTIPLIER = Decimal(1000)
MAX_BUFFER_PCT = Decimal(20)
SPLITS_MESSAGE = f"Use a whole number of child orders from {MIN_SPLITS} to {MAX_SPLITS}."
RETRY_MESSAGE = f"Use a whole number of retries from 0 to {MAX_RETRIES}."
TIMEOUT_MESSAGE = f"Use a whole number of seconds from {MIN_LIMIT_TIMEOUT} to {MAX_LIMIT_TIMEOUT}."
FAILURE_POLICY_LABELS = {
    FailurePolicy.REPORT: "Report (leave what filled, flag the account)",
    FailurePolicy.RETRY: "Retry (re-send a rejected leg when the rejection is not final)",
    FailurePolicy.UNWIND: "Unwind (close what this account filled in this run)",
}
LIMIT_FALLBACK_LABELS = {LimitFallback.CANCEL: "Cancel and report", LimitFallback.MARKET: "Replace by a MARKET order"}

RISK_PROFILE_LABELS = {
    RiskProfile.FIXED_LOTS: "Fixed lots (each leg's own lots × multiplier)",
    RiskProfile.CONSERVATIVE: "Conservative (40 % of available margin)",
    RiskProfile.BALANCED: "Balanced (65 % of available margin)",
    RiskProfile.AGGRESSIVE: "Aggressive (80 % of available margin)",
}
EXPIRY_LABELS = {ExpiryChoice.CURRENT_WEEK: "Current week", ExpiryChoice.NEXT_WEEK: "Next week",
                 ExpiryChoice.CURRENT_MONTH: "Current month", ExpiryChoice.NEXT_MONTH: "Next month"}
STRIKE_LABELS = {StrikeMethod.ATM: "ATM", StrikeMethod.ITM: "ITM n", StrikeMethod.OTM: "OTM n",
                 StrikeMethod.STRIKE: "Specific strike", StrikeMethod.PREMIUM_NEAR: "Premium near"}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _pairs(*pairs: tuple[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _choices(enum: Iterable[Any], labels: Mapping[Any, str] | None = None) -> list[SelectChoice]:
    return [SelectChoice(item.value, (labels or {}).get(item, item.value)) for item in enum]


def _optional_choices(enum: Iterable[Any], none_label: str) -> list[SelectChoice]:
    return [SelectChoice("", none_label), *_choices(enum)]


class Present:
    """The field has a value (its default counts: a JSON body may leave it out)."""

    def __init__(self, message: str):
        self.message = message

    def __call__(self, form, field) -> None:
        if field.data is None and not field.errors:
            raise _stop(self.message)


class Amount:
    """A finite Decimal in [minimum, maximum] (or > minimum), with at most `places` decimals."""

    def __init__(self, minimum: Decimal, maximum: Decimal, *, exclusive_minimum: bool = False, places: int = 2):
        self.minimum, self.maximum, self.exclusive, self.places = minimum, maximum, exclusive_minimum, places

    def __call__(self, form, field) -> None:
        value = field.data
        if value is None:
            return
        if not value.is_finite():
            raise _stop("Enter a number.")
        if self.exclusive and value <= self.minimum:
            raise _stop(f"Must be greater than {self.minimum}.")
        if not self.exclusive and value < self.minimum:
            raise _stop(f"Must be {self.minimum} or more.")
        if value > self.maximum:
            raise _stop(f"Must be at most {self.maximum:,}.")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.places:
            raise _stop(f"Use at most {self.places} decimal places.")


def _stop(message: str) -> StopValidation:
    return StopValidation(message)


class WholeNumberField(IntegerField):
    """An integer field whose blank input is "no value" (for Present), and whose bad input gets
    the field's own message ("1.5 lots" is told the rule, not "not a valid integer")."""

    def __init__(self, label: str, *, invalid: str, **kwargs):
        super().__init__(label, **kwargs)
        self.invalid = invalid

    def process_formdata(self, valuelist):
        if not valuelist:
            return  # not sent at all: the default stands
        if not str(valuelist[0]).strip():
            self.data = None  # sent blank: no value (Present names the field)
            return
        text = str(valuelist[0]).strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            self.data = None
            raise ValueError(self.invalid)
        self.data = int(text)


def _validated[T](value: T | None) -> T:
    """A value that validation guarantees (to_spec runs only on a valid form)."""
    if value is None:
        raise ValueError("to_spec() needs a validated form")
    return value


def _decimal(label: str, *validators) -> DecimalField:
    return DecimalField(label, validators=[Optional(), *validators], places=None)


def _action_select(label: str) -> SelectField:
    return SelectField(label, choices=_choices(RiskAction, ACTION_LABELS), default=DEFAULT_ACTION.value)


class _SubForm(BaseForm):
    class Meta:
        csrf = False


class LegForm(_SubForm):
    underlying = SelectField("Underlying", choices=[SelectChoice(s) for s in UNDERLYINGS], default="NIFTY")
    instrument = SelectField("Instrument", choices=_pairs(("option", "Option"), ("future", "Future")),
                             default=InstrumentKind.OPTION.value)
    expiry_choice = SelectField("Expiry", choices=_choices(ExpiryChoice, EXPIRY_LABELS),
                                default=ExpiryChoice.CURRENT_WEEK.value)
    strike_method = SelectField("Strike", choices=_choices(StrikeMethod, STRIKE_LABELS),
                                default=StrikeMethod.ATM.value)
    strike_offset = WholeNumberField(f"Offset ({MIN_OFFSET}–{MAX_OFFSET})", validators=[Optional()],
                                     invalid=f"Choose an offset from {MIN_OFFSET} to {MAX_OFFSET}.")
    # Finite, at most 2 decimals and bounded here (NaN used to reach the rule as a 500); "> 0" is the
    # strike rule's, which names the method in its message.
    strike_price = _decimal("Strike price", Amount(-MAX_PRICE, MAX_PRICE))
    target_premium = _decimal("Target premium (₹)", Amount(-MAX_PRICE, MAX_PRICE))
    option_type = SelectField("Type", choices=_choices(OptionType), default=OptionType.CE.value)
    action = SelectField("Action", choices=_choices(Action), default=Action.SELL.value)
    lots = WholeNumberField("Lots", default=1, invalid=f"Use a whole number of lots from 1 to {MAX_LOTS}.", validators=[
        Present("Enter the number of lots."),
        NumberRange(min=1, max=MAX_LOTS, message=f"Use a whole number of lots from 1 to {MAX_LOTS}.")])
    order_type = SelectField("Order", choices=_pairs(("MARKET", "Market"), ("LIMIT", "Limit at LTP ± buffer")),
                             default=OrderType.MARKET.value)
    limit_buffer_pct = _decimal("Limit buffer (%)", Amount(Decimal(0), MAX_BUFFER_PCT))
    stop_loss_unit = SelectField("Stop loss", choices=_optional_choices(LegRiskUnit, "None"), default="")
    stop_loss_value = _decimal("Stop loss value", Amount(Decimal(0), MAX_PRICE, exclusive_minimum=True))
    target_unit = SelectField("Target", choices=_optional_choices(LegRiskUnit, "None"), default="")
    target_value = _decimal("Target value", Amount(Decimal(0), MAX_PRICE, exclusive_minimum=True))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.instrument.data == InstrumentKind.OPTION.value:
            ok = self._check_strike() and ok
        else:  # a future has no strike and no option type: whatever was sent for them is ignored
            for unused in (self.strike_method, self.option_type, self.strike_offset, self.strike_price,
                           self.target_premium):
                unused.errors = []
            ok = not any(field.errors for field in self)
        if self.order_type.data == OrderType.LIMIT.value and self.limit_buffer_pct.data is None \
                and not self.limit_buffer_pct.errors:
            self.limit_buffer_pct.errors.append("Enter the buffer for a limit order (0 to 20 %).")
            ok = False
        for unit, value, what in ((self.stop_loss_unit, self.stop_loss_value, "stop loss"),
                                  (self.target_unit, self.target_value, "target")):
            if unit.data and value.data is None and not value.errors:
                value.errors.append(f"Enter the {what} value.")
                ok = False
            elif unit.data == LegRiskUnit.PERCENTAGE.value and what == "stop loss" \
                    and value.data is not None and value.data > 100:
                value.errors.append("A stop loss in percent must be at most 100.")
                ok = False
        return ok

    def _check_strike(self) -> bool:
        """The strike rule is the domain's StrikeRule: its validation decides, the field shows why."""
        method = StrikeMethod(self.strike_method.data)
        target = {StrikeMethod.ITM: self.strike_offset, StrikeMethod.OTM: self.strike_offset,
                  StrikeMethod.STRIKE: self.strike_price, StrikeMethod.PREMIUM_NEAR: self.target_premium}.get(method)
        if target is not None and target.errors:
            return False
        try:
            self.strike_rule()
        except ValueError:
            assert target is not None  # ATM takes no parameter and cannot fail
            message = {
                StrikeMethod.ITM: f"Choose an offset from {MIN_OFFSET} to {MAX_OFFSET}.",
                StrikeMethod.OTM: f"Choose an offset from {MIN_OFFSET} to {MAX_OFFSET}.",
                StrikeMethod.STRIKE: "Enter a strike price greater than 0.",
                StrikeMethod.PREMIUM_NEAR: "Enter a target premium greater than 0.",
            }[method]
            target.errors.append(message)
            return False
        return True

    def strike_rule(self) -> StrikeRule | None:
        """The leg's StrikeRule from the fields its method uses (the others are ignored)."""
        if self.instrument.data != InstrumentKind.OPTION.value:
            return None
        method = StrikeMethod(self.strike_method.data)
        uses_offset = method in (StrikeMethod.ITM, StrikeMethod.OTM)
        return StrikeRule(method,
                          offset=self.strike_offset.data if uses_offset else None,
                          strike=self.strike_price.data if method is StrikeMethod.STRIKE else None,
                          target_premium=self.target_premium.data if method is StrikeMethod.PREMIUM_NEAR else None)

    def to_spec(self, position: int) -> LegSpec:
        rule = self.strike_rule()
        option = self.instrument.data == InstrumentKind.OPTION.value
        limit = self.order_type.data == OrderType.LIMIT.value
        return LegSpec(
            position=position, underlying=self.underlying.data, instrument=InstrumentKind(self.instrument.data),
            expiry_choice=ExpiryChoice(self.expiry_choice.data), strike=rule,
            option_type=OptionType(self.option_type.data) if option else None,
            action=Action(self.action.data), lots=_validated(self.lots.data),
            order_type=OrderType(self.order_type.data),
            limit_buffer_pct=self.limit_buffer_pct.data if limit else None,
            stop_loss=(LegRiskUnit(self.stop_loss_unit.data), self.stop_loss_value.data)
            if self.stop_loss_unit.data else None,
            target=(LegRiskUnit(self.target_unit.data), self.target_value.data) if self.target_unit.data else None)


class AccountRowForm(_SubForm):
    account_id = HiddenField("Account")
    enabled = BooleanField("Run on this account")
    lot_multiplier = _decimal("Lot multiplier")
    capital_cap = _decimal("Capital cap (₹)")


class StrategyForm(BaseForm):
    name = StringField("Name", filters=[refuse_control_characters, _strip], validators=[
        DataRequired(message="Enter a name."), Length(max=100, message="Use at most 100 characters.")])
    description = TextAreaField("Description", validators=[Length(max=2000, message="Use at most 2000 characters.")])
    market_condition = SelectField("Market condition", default=MarketCondition.ANY.value, choices=_pairs(
        ("any", "Any day"), ("expiry", "Expiry days only"), ("non_expiry", "Non-expiry days only")))
    risk_profile = SelectField("Risk profile", choices=_choices(RiskProfile, RISK_PROFILE_LABELS),
                               default=RiskProfile.BALANCED.value)
    product = SelectField("Product", choices=_pairs(("MIS", "MIS (intraday)"), ("NRML", "NRML (carry forward)")),
                          default=Product.MIS.value)
    allowed_splits = WholeNumberField(
        f"Allowed splits per leg ({MIN_SPLITS}–{MAX_SPLITS})", default=DEFAULT_SPLITS, invalid=SPLITS_MESSAGE,
        validators=[Present("Enter the allowed splits."),
                    NumberRange(min=MIN_SPLITS, max=MAX_SPLITS, message=SPLITS_MESSAGE)])
    entry_time = TimeField("Entry time (IST)", validators=[InputRequired(message="Enter a time like 09:20.")])
    exit_time = TimeField("Exit time (IST)", validators=[InputRequired(message="Enter a time like 15:00.")])
    square_off_time = TimeField("Square-off time (IST)",
                                validators=[InputRequired(message="Enter a time like 15:15.")])
    max_loss = _decimal("Max loss (₹)", Amount(Decimal(0), MAX_MONEY, exclusive_minimum=True))
    max_profit = _decimal("Max profit (₹)", Amount(Decimal(0), MAX_MONEY, exclusive_minimum=True))
    trailing_type = SelectField("Trailing stop", choices=_optional_choices(TrailingType, "None"), default="")
    trailing_value = _decimal("Trailing distance", Amount(Decimal(0), MAX_MONEY, exclusive_minimum=True))
    supertrend_enabled = BooleanField("Supertrend exit")
    supertrend_period = WholeNumberField("Supertrend period", default=7, invalid="Use a period from 2 to 100.",
                                         validators=[
        Present("Enter the period."),
        NumberRange(min=2, max=100, message="Use a period from 2 to 100.")])
    supertrend_multiplier = DecimalField("Supertrend multiplier", default=Decimal(3), places=None, validators=[
        Present("Enter the multiplier."), Amount(Decimal(0), Decimal(20), exclusive_minimum=True)])
    supertrend_timeframe = SelectField("Supertrend timeframe", choices=_choices(SupertrendTimeframe),
                                       default=SupertrendTimeframe.M5.value)
    supertrend_exit = SelectField("Supertrend exit on", default=SupertrendExit.BREAKOUT.value, choices=_pairs(
        ("breakout", "Breakout (net premium trend turns up)"),
        ("breakdown", "Breakdown (net premium trend turns down)")))
    # Risk engine (issue 10): how thresholds apply across accounts, and what each rule's breach does.
    risk_scope = SelectField("Risk scope", choices=_choices(RiskScope, SCOPE_LABELS), default=DEFAULT_SCOPE.value)
    max_loss_action = _action_select("On max loss")
    max_profit_action = _action_select("On max profit")
    trailing_action = _action_select("On trailing stop")
    supertrend_action = _action_select("On Supertrend exit")
    # Execution settings (issue 9): copied onto each run when it is submitted.
    failure_policy = SelectField("If part of an account's entry fails", default=FailurePolicy.REPORT.value,
                                 choices=_choices(FailurePolicy, FAILURE_POLICY_LABELS))
    retry_limit = WholeNumberField(f"Retries of a rejected leg (0–{MAX_RETRIES})", default=2, invalid=RETRY_MESSAGE,
                                   validators=[Present("Enter the number of retries."),
                                               NumberRange(min=0, max=MAX_RETRIES, message=RETRY_MESSAGE)])
    resend_not_placed = BooleanField("Send an entry order that never reached the broker once more", default=True)
    limit_timeout_seconds = WholeNumberField(
        f"Unfilled LIMIT order timeout (s, {MIN_LIMIT_TIMEOUT}–{MAX_LIMIT_TIMEOUT})", default=30,
        invalid=TIMEOUT_MESSAGE,
        validators=[Present("Enter the LIMIT order timeout."),
                    NumberRange(min=MIN_LIMIT_TIMEOUT, max=MAX_LIMIT_TIMEOUT, message=TIMEOUT_MESSAGE)])
    limit_fallback = SelectField("Then", default=LimitFallback.CANCEL.value,
                                 choices=_choices(LimitFallback, LIMIT_FALLBACK_LABELS))
    auto_entry = BooleanField("Enter by itself at the entry time on trading days")
    legs = FieldList(FormField(LegForm), min_entries=0, max_entries=PARSE_LIMIT)
    accounts = FieldList(FormField(AccountRowForm), min_entries=0, max_entries=PARSE_LIMIT)

    def __init__(self, *args, own_accounts: Mapping[int, str] | None = None,
                 session: tuple[time, time] = (MARKET_OPEN, MARKET_CLOSE), **kwargs):
        super().__init__(*args, **kwargs)
        self.own_accounts = dict(own_accounts or {})
        self.session = session

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not self.legs.entries:
            self.legs.errors.append("Add at least one leg.")
            ok = False
        elif len(self.legs.entries) > MAX_LEGS:
            self.legs.errors.append(f"A strategy has at most {MAX_LEGS} legs; remove "
                                    f"{len(self.legs.entries) - MAX_LEGS}.")
            ok = False
        for name, message in time_problems(self.entry_time.data, self.exit_time.data, self.square_off_time.data,
                                           *self.session).items():
            field = self[name]
            if not field.errors:
                field.errors.append(message)
                ok = False
        if self.trailing_type.data and self.trailing_value.data is None and not self.trailing_value.errors:
            self.trailing_value.errors.append("Enter the trailing distance.")
            ok = False
        if self.trailing_type.data == TrailingType.PERCENTAGE.value and self.trailing_value.data is not None \
                and self.trailing_value.data > 100:
            self.trailing_value.errors.append("A percentage must be at most 100.")
            ok = False
        if not self.trailing_type.data and self.trailing_value.data is not None and not self.trailing_type.errors:
            # A distance without its unit would be silently dropped; say so instead.
            self.trailing_type.errors.append("Choose the trailing stop type (amount, percentage or points).")
            ok = False
        return self._check_accounts() and ok

    def _check_accounts(self) -> bool:
        ok = True
        seen: set[int] = set()
        for row in self.accounts.entries:
            sub = row.form
            if not sub.enabled.data:
                continue
            account_id = int_or_none(sub.account_id.data)
            if account_id is None or account_id not in self.own_accounts:
                sub.account_id.errors.append("Choose one of your own accounts.")
                ok = False
            elif account_id in seen:
                sub.account_id.errors.append("This account is listed twice.")
                ok = False
            else:
                seen.add(account_id)
            for field, rule in ((sub.lot_multiplier, Amount(Decimal(0), MAX_MULTIPLIER, exclusive_minimum=True)),
                                (sub.capital_cap, Amount(Decimal(0), MAX_MONEY))):
                if field.errors:
                    continue
                try:
                    rule(sub, field)
                except StopValidation as exc:
                    field.errors.append(str(exc))
            if sub.lot_multiplier.errors or sub.capital_cap.errors:
                ok = False
        return ok

    def to_spec(self) -> StrategySpec:
        """The validated strategy (call only after `validate()` returned True)."""
        accounts = tuple(
            AccountSpec(int(row.form.account_id.data), row.form.lot_multiplier.data or Decimal(1),
                        row.form.capital_cap.data)
            for row in self.accounts.entries if row.form.enabled.data)
        return StrategySpec(
            name=self.name.data, description=(self.description.data or "").strip(),
            market_condition=MarketCondition(self.market_condition.data),
            risk_profile=RiskProfile(self.risk_profile.data), product=Product(self.product.data),
            allowed_splits=_validated(self.allowed_splits.data),
            entry_time=self.entry_time.data, exit_time=self.exit_time.data,
            square_off_time=self.square_off_time.data, max_loss=self.max_loss.data, max_profit=self.max_profit.data,
            trailing_type=TrailingType(self.trailing_type.data) if self.trailing_type.data else None,
            trailing_value=self.trailing_value.data if self.trailing_type.data else None,
            supertrend_enabled=bool(self.supertrend_enabled.data),
            supertrend_period=_validated(self.supertrend_period.data),
            supertrend_multiplier=self.supertrend_multiplier.data,
            supertrend_timeframe=SupertrendTimeframe(self.supertrend_timeframe.data),
            supertrend_exit=SupertrendExit(self.supertrend_exit.data),
            risk_scope=RiskScope(self.risk_scope.data),
            max_loss_action=RiskAction(self.max_loss_action.data),
            max_profit_action=RiskAction(self.max_profit_action.data),
            trailing_action=RiskAction(self.trailing_action.data),
            supertrend_action=RiskAction(self.supertrend_action.data),
            failure_policy=FailurePolicy(self.failure_policy.data),
            retry_limit=_validated(self.retry_limit.data),
            resend_not_placed=bool(self.resend_not_placed.data),
            limit_timeout_seconds=_validated(self.limit_timeout_seconds.data),
            limit_fallback=LimitFallback(self.limit_fallback.data),
            auto_entry=bool(self.auto_entry.data),
            legs=tuple(entry.form.to_spec(i) for i, entry in enumerate(self.legs.entries)),
            accounts=accounts)


class TemplateNameForm(BaseForm):
    name = StringField("Template name", filters=[refuse_control_characters, _strip], validators=[
        DataRequired(message="Enter a template name."), Length(max=100, message="Use at most 100 characters.")])


def new_leg_form() -> LegForm:
    """A blank leg with the placeholder index the builder's script replaces (legs-__index__-...)."""
    return LegForm(formdata=None, prefix="legs-__index__-")
