"""Application access to the encryptor and the key rotation use case."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.extensions import Model, db
from app.security.encryption import Encryptor, encrypted_columns

logger = logging.getLogger(__name__)


def get_encryptor() -> Encryptor:
    return Encryptor.from_config(current_app.config["ENCRYPTION_KEY"])


def reencrypt_all(new_encryptor: Encryptor, columns: list[tuple[type, str]] | None = None) -> int:
    """Re-encrypt every encrypted column under the new primary key in one transaction.

    Returns the number of values rewritten. Nothing is written if any value fails.
    """
    if columns is None:
        columns = encrypted_columns(list(Model.registry.mappers))
    rewritten = 0
    try:
        for model, attr in columns:
            rows: list = list(db.session.scalars(select(model)))
            for row in rows:
                value = getattr(row, attr)
                if value:
                    setattr(row, attr, new_encryptor.rotate(value))
                    rewritten += 1
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    logger.info("Re-encrypted %d values across %d columns", rewritten, len(columns))
    return rewritten
