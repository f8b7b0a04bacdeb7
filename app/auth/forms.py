from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from app.forms_common import BaseForm, PasswordPolicy, email_field, username_field


class RegisterForm(BaseForm):
    username = username_field()
    email = email_field()
    password = PasswordField("Password", validators=[DataRequired(message="Enter a password."),
                                                     PasswordPolicy("username")])
    confirm = PasswordField("Confirm password", validators=[
        DataRequired(message="Repeat the password."), EqualTo("password", message="Passwords do not match.")])
    submit = SubmitField("Create account")


class LoginForm(BaseForm):
    # A control character in the login name is answered and audited as a failed login.
    allow_control_characters = frozenset({"identifier"})
    identifier = StringField("Username or email", validators=[
        DataRequired(message="Enter your username or email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."),
                                                     Length(max=128)])
    remember = BooleanField("Remember me")
    submit = SubmitField("Sign in")


class ChangePasswordForm(BaseForm):
    current_password = PasswordField("Current password", validators=[
        DataRequired(message="Enter your current password."), Length(max=128)])
    password = PasswordField("New password", validators=[DataRequired(message="Enter a new password."),
                                                         PasswordPolicy()])
    confirm = PasswordField("Confirm new password", validators=[
        DataRequired(message="Repeat the new password."), EqualTo("password", message="Passwords do not match.")])
    submit = SubmitField("Change password")
