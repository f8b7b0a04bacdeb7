from flask_wtf import FlaskForm
from wtforms import SelectField, SubmitField

from app.forms_common import email_field, username_field
from app.models.users import ROLES


class CreateUserForm(FlaskForm):
    username = username_field()
    email = email_field()
    role = SelectField("Role", choices=list(ROLES), default="trader")
    submit = SubmitField("Create user")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=list(ROLES))
