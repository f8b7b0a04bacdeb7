"""Forms of the execution pages: Execute, the close/retry buttons and the kill switch."""

from __future__ import annotations

from wtforms import HiddenField, SelectMultipleField, StringField, widgets
from wtforms.validators import InputRequired, Length, Regexp

from app.forms_common import BaseForm, refuse_control_characters

KILL_SWITCH_WORD = "KILL"


class AccountChecks(SelectMultipleField):
    """One checkbox per account (the strategy's accounts)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ExecuteForm(BaseForm):
    # Made when the page renders; a second submit of the same page (double click, refresh,
    # two tabs) carries the same key and the planner answers with the same run.
    idempotency_key = HiddenField("Idempotency key", validators=[
        InputRequired(message="The form expired; reload the page."),
        Length(min=8, max=64, message="The form expired; reload the page."),
        Regexp(r"^[A-Za-z0-9-]+$", message="The form expired; reload the page.")])
    account_ids = AccountChecks("Accounts", coerce=int, validate_choice=True)

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.account_ids.data:
            self.account_ids.errors = ["Tick at least one account to execute on."]
            ok = False
        return ok


class KillSwitchForm(BaseForm):
    """The kill switch's confirmation: the user types KILL (no JavaScript confirm() alone)."""

    confirmation = StringField(f"Type {KILL_SWITCH_WORD} to confirm", filters=[refuse_control_characters],
                               validators=[InputRequired(message=f"Type {KILL_SWITCH_WORD} to confirm.")])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and (self.confirmation.data or "").strip().upper() != KILL_SWITCH_WORD:
            self.confirmation.errors = [f"Type {KILL_SWITCH_WORD} to confirm."]
            ok = False
        return ok
