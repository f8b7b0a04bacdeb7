from wtforms import BooleanField, DecimalField, PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation

from app.domain.risk_settings import daily_limit_problem
from app.forms_common import BaseForm


def _daily_limit(form, field) -> None:
    problem = daily_limit_problem(field.data)
    if problem:
        raise StopValidation(problem)


class AccountForm(BaseForm):
    account_name = StringField("Account name", validators=[DataRequired(message="Enter an account name."),
                                                           Length(max=64)])
    host_url = StringField("OpenAlgo host URL", validators=[DataRequired(message="Enter the OpenAlgo host URL."),
                                                             Length(max=255)])
    websocket_url = StringField("WebSocket URL", validators=[Optional(), Length(max=255)])
    # No strip filter: stray whitespace in a key is reported, not silently changed.
    api_key = PasswordField("API key", validators=[Length(max=300)])
    is_primary = BooleanField("Primary account (supplies market data)")
    # Risk engine (issue 10): the account's P&L over the IST trading day, across all its runs.
    daily_loss_limit = DecimalField("Daily loss limit (₹, optional)", places=None,
                                    validators=[Optional(), _daily_limit])
    daily_profit_limit = DecimalField("Daily profit limit (₹, optional)", places=None,
                                      validators=[Optional(), _daily_limit])
    submit = SubmitField("Save")


class HostAllowlistForm(BaseForm):
    hosts = TextAreaField("Allowed hosts (host or host:port, separated by commas or new lines; empty = any)",
                          validators=[Length(max=2000)])
