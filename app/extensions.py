"""Flask extensions, created unbound and initialised in create_app()."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app
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


F = TypeVar("F", bound=Callable[..., Any])


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
# Rate-limit tiers (DOMAIN.md security defaults): a view is marked with @rate_tier(name) and
# init_limiter() applies the tier's configured limit; each tier is one shared bucket per client IP.
RATE_TIERS = {"auth": "RATELIMIT_AUTH", "api": "RATELIMIT_API", "heavy": "RATELIMIT_HEAVY"}
EXEMPT = "exempt"
# The auth tier counts credential submissions only, not page views.
_TIER_METHODS = {"auth": ["POST"]}


def rate_tier(name: str, methods: list[str] | None = None) -> Callable[[F], F]:
    """Mark a view with a rate-limit tier (auth, api, heavy) or as exempt (health probes).

    `methods` limits counting to those methods (e.g. only the POST of a form page pings a broker).
    """
    if name not in RATE_TIERS and name != EXEMPT:
        raise ValueError(f"unknown rate tier {name!r}")

    def mark(view: F) -> F:
        view.rate_tier = name  # type: ignore[attr-defined]
        view.rate_tier_methods = methods  # type: ignore[attr-defined]
        return view

    return mark


def user_or_ip() -> str:
    """Signed-in traffic is counted per user (a family behind one NAT shares an IP); the rest per IP."""
    from flask_login import current_user

    if current_user and current_user.is_authenticated:
        return f"user:{current_user.id}"
    return get_remote_address()


def init_limiter(app: Flask) -> Limiter:
    """One limiter per app, built from its config, applied to every marked view.

    Storage is REDIS_URL: with Redis every worker and host shares the counters; there is
    no silent fallback to process memory when Redis is configured.
    """
    cfg = app.config
    limiter = Limiter(
        key_func=get_remote_address,
        application_limits=[cfg["RATELIMIT_GLOBAL"]],
        storage_uri=cfg["REDIS_URL"],
        strategy="moving-window",
        headers_enabled=True,
        enabled=cfg["RATELIMIT_ENABLED"],
        key_prefix=cfg["RATELIMIT_KEY_PREFIX"],
        in_memory_fallback_enabled=False,
    )
    limiter.init_app(app)
    views: dict[str, Any] = app.view_functions
    for endpoint, view in list(views.items()):
        tier = getattr(view, "rate_tier", None)
        if tier == EXEMPT:
            views[endpoint] = limiter.exempt(view)
        elif tier:
            methods = getattr(view, "rate_tier_methods", None) or _TIER_METHODS.get(tier)
            views[endpoint] = limiter.shared_limit(
                cfg[RATE_TIERS[tier]], scope=tier, methods=methods,
                key_func=None if tier == "auth" else user_or_ip,
            )(view)
    return limiter


def get_limiter() -> Limiter:
    return current_app.extensions["algomirror_limiter"]
