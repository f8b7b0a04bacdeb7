from wtforms import SelectField, SubmitField

from app.forms_common import BaseForm, email_field, username_field
from app.models.users import ROLES


class CreateUserForm(BaseForm):
    username = username_field()
    email = email_field()
    role = SelectField("Role", choices=list(ROLES), default="trader")
    submit = SubmitField("Create user")


class RoleForm(BaseForm):
    role = SelectField("Role", choices=list(ROLES))
