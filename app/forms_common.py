"""Validators and forms shared by several blueprints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto  # Flask-WTF's "read the request" sentinel
from werkzeug.datastructures import ImmutableMultiDict
from wtforms import EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Regexp, ValidationError

from app.domain.passwords import password_problems
from app.text_safety import has_control_characters

USERNAME_RE = r"^[A-Za-z0-9_.-]+$"
CONTROL_CHARACTER_MESSAGE = "Remove control characters (such as NUL, escape or line breaks)."
_SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refuse_control_characters(value: Any) -> Any:
    """Field filter: a single-line text with a control character is a field error (NUL breaks PostgreSQL)."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    return value


def refuse_control_characters_except_newlines(value: Any) -> Any:
    """Field filter for multi-line text: tab, CR and LF are allowed, other control characters are not."""
    if isinstance(value, str) and has_control_characters(value, allow_newlines=True):
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    return value


def _json_form_data(body: Any) -> ImmutableMultiDict:
    """A JSON object posted to a form, as the flat text fields a browser would send."""
    if not isinstance(body, dict):
        abort(400, description="The JSON body must be an object.")
    items: list[tuple[str, str]] = []
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict | list):
                abort(400, description="Form fields in a JSON body must be strings, numbers or booleans.")
            # true is a ticked checkbox, false and null an empty field, as in a browser's form post.
            items.append((key, "y" if item is True else "" if item is False or item is None else str(item)))
    return ImmutableMultiDict(items)


class BaseForm(FlaskForm):
    """The project's form base: every text field refuses control characters, and a JSON body
    is read as flat text fields (a number or a nested object can never reach a validator).

    Text fields are StringField and its subclasses (TextAreaField, EmailField...); text areas
    accept line breaks. Passwords are exempt (hashed, never stored or logged as typed), and so
    are the fields a form names in `allow_control_characters` (e.g. a login name whose failure
    must be answered and audited like any other). Fields inside FieldList/FormField are not covered.
    """

    allow_control_characters: frozenset[str] = frozenset()

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            field_class = unbound_field.field_class
            if (issubclass(field_class, StringField) and not issubclass(field_class, PasswordField)
                    and options.get("name") not in form.allow_control_characters
                    and len(unbound_field.args) < 3):  # filters not given positionally
                check = (refuse_control_characters_except_newlines if issubclass(field_class, TextAreaField)
                         else refuse_control_characters)
                # First, so that no other filter (e.g. strip) sees the bad value.
                filters = [f for f in unbound_field.kwargs.get("filters", ()) if f is not check]
                options = {**options, "filters": [check, *filters]}
            return super().bind_field(form, unbound_field, options)

        def wrap_formdata(self, form, formdata):
            if (formdata is _Auto and request.method in _SUBMIT_METHODS and request.is_json
                    and not request.form and not request.files):
                return _json_form_data(request.get_json(silent=True))
            return super().wrap_formdata(form, formdata)


def username_field(label: str = "Username") -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message="Enter a username."),
            Length(min=3, max=32, message="Use 3 to 32 characters."),
            Regexp(USERNAME_RE, message="Use letters, digits, dots, dashes and underscores only."),
        ],
        filters=[refuse_control_characters, lambda v: v.strip() if isinstance(v, str) else v],
    )


def email_field(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            DataRequired(message="Enter an email address."),
            Length(max=254),
            Email(message="Enter a valid email address.", check_deliverability=False),
        ],
        filters=[refuse_control_characters, lambda v: v.strip() if isinstance(v, str) else v],
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


class ActionForm(BaseForm):
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
