"""Strategy templates: the built-in ones (no owner, read-only) and each user's own.

A template's spec is a strategy's settings and legs in the JSON API's shape (see
crud.settings_dict); a strategy is made from one through the builder's validation, exactly as
any new strategy, so an outdated or hand-edited spec can never bypass it.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from app.domain.strategy_settings import DEFAULT_SPLITS
from app.extensions import db
from app.models.strategies import Strategy, StrategyTemplate
from app.models.users import User
from app.services import audit
from app.services.strategy.crud import settings_dict

NAME_TAKEN = "a template with this name already exists"


class TemplateError(Exception):
    """A template cannot be saved; `field` names the form field at fault."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.message = message
        self.field = field


def visible_templates(user: User) -> Select[StrategyTemplate]:
    """The built-in templates, then the user's own, by name."""
    return (select(StrategyTemplate)
            .where(or_(StrategyTemplate.user_id.is_(None), StrategyTemplate.user_id == user.id))
            .order_by(StrategyTemplate.user_id.is_not(None), StrategyTemplate.name, StrategyTemplate.id))


def get_visible(user: User, template_id: int) -> StrategyTemplate:
    """A built-in template or one of the user's; 404 for another user's."""
    template = db.session.scalar(visible_templates(user).where(StrategyTemplate.id == template_id))
    if template is None:
        abort(404)
    return template


def get_editable(user: User, template_id: int) -> StrategyTemplate:
    """One of the user's own templates; 403 for a built-in one, 404 for another user's."""
    template = get_visible(user, template_id)
    if template.builtin:
        abort(403, description="Built-in templates cannot be changed or deleted.")
    return template


def _name_taken(user: User, name: str) -> bool:
    """Names are compared without case, against the user's templates and the built-in ones."""
    stmt = select(func.count()).select_from(StrategyTemplate).where(
        or_(StrategyTemplate.user_id.is_(None), StrategyTemplate.user_id == user.id),
        func.lower(StrategyTemplate.name) == name.lower())
    return bool(db.session.scalar(stmt))


def save_as_template(user: User, strategy: Strategy, name: str) -> StrategyTemplate:
    """Store a strategy's settings and legs (not its accounts) as a template of the user.

    Raises:
        TemplateError: the name is taken (by one of the user's templates or a built-in one).
    """
    if strategy.user_id != user.id:
        abort(404)
    name = name.strip()
    if _name_taken(user, name):
        raise TemplateError(NAME_TAKEN)
    template = StrategyTemplate(user_id=user.id, name=name, description=strategy.description,
                                spec=settings_dict(strategy))
    db.session.add(template)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent save with the same name won the race
        db.session.rollback()
        raise TemplateError(NAME_TAKEN) from None
    audit.record("strategy_template_saved", category="strategy", user=user, commit=False,
                 details={"template_id": template.id, "name": name, "strategy_id": strategy.id})
    db.session.commit()
    return template


def delete_template(user: User, template: StrategyTemplate) -> None:
    if template.builtin or template.user_id != user.id:
        abort(403 if template.builtin else 404)
    details = {"template_id": template.id, "name": template.name}
    db.session.delete(template)
    audit.record("strategy_template_deleted", category="strategy", user=user, commit=False, details=details)
    db.session.commit()


def template_spec(template: StrategyTemplate) -> dict[str, Any]:
    """The template's spec, with today's defaults for settings added after it was stored
    (a spec saved before allowed_splits existed gets the default)."""
    return {"allowed_splits": DEFAULT_SPLITS, **template.spec}


def template_dict(template: StrategyTemplate) -> dict[str, Any]:
    return {"id": template.id, "name": template.name, "description": template.description,
            "builtin": template.builtin, "spec": template_spec(template)}


def strategy_body(template: StrategyTemplate, name: str | None = None,
                  accounts: list[Any] | None = None) -> dict[str, Any]:
    """A new strategy's JSON body from a template (to be validated by the builder's form)."""
    return {**template_spec(template), "name": template.name if name is None else name,
            "description": template.description, "accounts": accounts or []}
