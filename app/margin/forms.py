"""Forms of the margin pages: settings rows (admin) and the calculator (GET or JSON)."""

from __future__ import annotations

from decimal import Decimal

from wtforms import DecimalField, IntegerField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, ValidationError

from app.domain.instruments import UNDERLYINGS
from app.domain.margin import TradeType
from app.domain.sizing import PROFILE_PERCENT
from app.forms_common import BaseForm

MAX_QTY = 1_000_000
MAX_AMOUNT = Decimal("99999999999.99")


def _whole(label: str) -> IntegerField:
    return IntegerField(label, validators=[
        InputRequired(message="Enter a whole number."),
        NumberRange(min=1, max=MAX_QTY, message=f"Enter a whole number from 1 to {MAX_QTY:,}.")])


class _FiniteRange:
    """low < value <= high for a finite Decimal (NaN and Infinity are refused, never compared)."""

    def __init__(self, low: Decimal, high: Decimal, message: str):
        self.low, self.high, self.message = low, high, message

    def __call__(self, form, field) -> None:
        value = field.data
        if value is None or not isinstance(value, Decimal) or not value.is_finite() or not (
                self.low < value <= self.high):
            raise ValidationError(self.message)


def _amount(label: str) -> DecimalField:
    return DecimalField(label, places=2, validators=[
        InputRequired(message="Enter an amount in ₹."),
        _FiniteRange(Decimal(0), MAX_AMOUNT, "Enter an amount above ₹0 and at most ₹99,99,99,99,999.99.")])


class ContractForm(BaseForm):
    lot_size = _whole("Lot size")
    next_month_lot_size = _whole("Next-month lot size")
    freeze_qty = _whole("Freeze quantity")
    strike_step = _whole("Strike step")

    def validate_freeze_qty(self, field) -> None:
        for lot in (self.lot_size.data, self.next_month_lot_size.data):
            if isinstance(lot, int) and isinstance(field.data, int) and field.data < lot:
                raise ValidationError(f"The freeze quantity must be at least one lot ({lot}).")


class MarginForm(BaseForm):
    expiry_margin = _amount("Expiry day (₹ per lot)")
    non_expiry_margin = _amount("Other days (₹ per lot)")


class GradeForm(BaseForm):
    percent = DecimalField("Share of available margin (%)", places=2, validators=[
        InputRequired(message="Enter a percentage."),
        _FiniteRange(Decimal(0), Decimal(100), "Enter a percentage above 0 and at most 100.")])


TRADE_TYPE_NAMES = {
    TradeType.CE_OR_PE_SELL.value: "CE or PE sell",
    TradeType.CE_AND_PE_SELL.value: "CE and PE sell (straddle / strangle)",
    TradeType.FUTURES.value: "Futures",
    TradeType.OPTION_BUYING.value: "Option buying",
}


def _account_id(value):
    """Account ids as posted: anything that is not a plain whole number becomes -1 (no such account)."""
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else -1


class CalculatorForm(BaseForm):
    """The calculator's inputs. No CSRF field: the page is a GET (no state change) and its JSON
    POST is checked by the app-wide CSRF hook (X-CSRFToken header)."""

    class Meta:
        csrf = False

    accounts = SelectMultipleField("Accounts", coerce=_account_id, validate_choice=False,
                                   validators=[InputRequired(message="Pick at least one account.")])
    underlying = SelectField("Underlying", choices=[SelectChoice(u, u) for u in UNDERLYINGS], validate_choice=True)
    trade_type = SelectField("Trade type", choices=[SelectChoice(v, label) for v, label in TRADE_TYPE_NAMES.items()],
                             validate_choice=True)
    share = SelectField("Trade quality or risk profile", validate_choice=True)
    allowed_splits = IntegerField("Allowed splits per leg", default=1, validators=[
        InputRequired(message="Enter a whole number."),
        NumberRange(min=1, max=50, message="Enter a whole number from 1 to 50.")])

    def set_share_choices(self, grades: dict[str, Decimal]) -> None:
        self.share.choices = [
            *(SelectChoice(f"grade:{g}", f"Grade {g} ({p.normalize():f} %)") for g, p in grades.items()),
            *(SelectChoice(f"profile:{p.value}", f"{p.value.capitalize()} ({pct} %)")
              for p, pct in PROFILE_PERCENT.items()),
        ]

    def validate_accounts(self, field) -> None:
        if not field.data:
            raise ValidationError("Pick at least one account.")
        if len(field.data) > 100:
            raise ValidationError("Pick at most 100 accounts.")
