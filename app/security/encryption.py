"""Symmetric encryption of secrets at rest (account API keys) with MultiFernet.

ENCRYPTION_KEY holds one or more Fernet keys separated by commas, newest first.
The first key encrypts; every key decrypts, so a rotation never breaks old rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class EncryptionError(Exception):
    """A value could not be encrypted or decrypted with the configured keys."""


def parse_keys(raw: str) -> list[str]:
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise EncryptionError("ENCRYPTION_KEY is empty")
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise EncryptionError("ENCRYPTION_KEY contains a value that is not a Fernet key") from exc
    return keys


@dataclass(frozen=True)
class Encryptor:
    keys: tuple[str, ...]

    @classmethod
    def from_config(cls, raw: str) -> Encryptor:
        return cls(tuple(parse_keys(raw)))

    @property
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k.encode()) for k in self.keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionError("value cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the primary key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionError("value cannot be decrypted with the configured keys") from exc

    def with_new_primary(self, new_key: str) -> Encryptor:
        parse_keys(new_key)
        return Encryptor((new_key, *self.keys))

    def serialized(self) -> str:
        return ",".join(self.keys)


def mask_secret(secret: str, visible: int = 4) -> str:
    """Show only the last `visible` characters of a secret."""
    if not secret:
        return ""
    tail = secret[-visible:] if len(secret) > visible else ""
    return "•" * 8 + tail


def rotate_values(encryptor: Encryptor, tokens: Iterable[str | None]) -> list[str | None]:
    return [None if token is None else encryptor.rotate(token) for token in tokens]


def encrypted_columns(mappers: Sequence) -> list[tuple[type, str]]:
    """(model class, attribute) for every mapped column marked info={"encrypted": True}."""
    found: list[tuple[type, str]] = []
    for mapper in mappers:
        for attr in mapper.column_attrs:
            if any(col.info.get("encrypted") for col in attr.columns):
                found.append((mapper.class_, attr.key))
    return found
