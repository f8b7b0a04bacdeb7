"""Validators and forms shared by several blueprints."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Length, Regexp, ValidationError

from app.domain.passwords import password_problems

USERNAME_RE = r"^[A-Za-z0-9_.-]+$"


def username_field(label: str = "Username") -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message="Enter a username."),
            Length(min=3, max=32, message="Use 3 to 32 characters."),
            Regexp(USERNAME_RE, message="Use letters, digits, dots, dashes and underscores only."),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )


def email_field(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            DataRequired(message="Enter an email address."),
            Length(max=254),
            Email(message="Enter a valid email address.", check_deliverability=False),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )


class PasswordPolicy:
    """WTForms validator applying the domain password policy, one message per problem."""

    def __init__(self, username_field_name: str | None = None):
        self.username_field_name = username_field_name

    def __call__(self, form, field) -> None:
        username = None
        if self.username_field_name and self.username_field_name in form:
            username = form[self.username_field_name].data
        problems = password_problems(field.data or "", username=username)
        if problems:
            field.errors[:] = []
            raise ValidationError(" ".join(problems))


class ActionForm(FlaskForm):
    """A form with only the CSRF token: every state-changing button posts one."""


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths are followed after login.

    Browsers drop tabs and newlines inside URLs and treat "\\" like "/", so "/\t/evil.com"
    would become "//evil.com": any whitespace or control character, or a second slash or
    backslash right after the first, is refused.
    """
    if not target or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target):
        return False
    parts = urlsplit(target)
    return (not parts.scheme and not parts.netloc and target.startswith("/")
            and not target.startswith(("//", "/\\")))
