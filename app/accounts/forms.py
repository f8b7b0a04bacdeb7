from wtforms import BooleanField, PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.forms_common import BaseForm


class AccountForm(BaseForm):
    account_name = StringField("Account name", validators=[DataRequired(message="Enter an account name."),
                                                           Length(max=64)])
    host_url = StringField("OpenAlgo host URL", validators=[DataRequired(message="Enter the OpenAlgo host URL."),
                                                             Length(max=255)])
    websocket_url = StringField("WebSocket URL", validators=[Optional(), Length(max=255)])
    # No strip filter: stray whitespace in a key is reported, not silently changed.
    api_key = PasswordField("API key", validators=[Length(max=300)])
    is_primary = BooleanField("Primary account (supplies market data)")
    submit = SubmitField("Save")


class HostAllowlistForm(BaseForm):
    hosts = TextAreaField("Allowed hosts (host or host:port, separated by commas or new lines; empty = any)",
                          validators=[Length(max=2000)])
