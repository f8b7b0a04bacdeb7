"""Flask extensions, created unbound and initialised in create_app()."""

from typing import TYPE_CHECKING

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# Models subclass `Model`: Flask-SQLAlchemy's generated class at run time, the typed base for mypy.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def _tier(name: str):
    return lambda: current_app.config[name]


# Rate-limit tiers (DOMAIN.md security defaults). Each tier is one shared bucket per client IP.
auth_limit = limiter.shared_limit(_tier("RATELIMIT_AUTH"), scope="auth", methods=["POST"])
api_limit = limiter.shared_limit(_tier("RATELIMIT_API"), scope="api")
heavy_limit = limiter.shared_limit(_tier("RATELIMIT_HEAVY"), scope="heavy")
