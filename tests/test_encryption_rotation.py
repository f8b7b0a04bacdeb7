"""`flask rotate-encryption-key` re-encrypts every encrypted column and keeps old rows readable."""

import stat

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.extensions import db
from app.security.encryption import Encryptor, encrypted_columns
from app.services.encryption import get_encryptor, reencrypt_all


class _ScratchBase(DeclarativeBase):
    pass


class SecretThing(_ScratchBase):
    """A scratch table standing in for account API keys (added by a later issue)."""

    __tablename__ = "test_secret_things"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_encrypted: Mapped[str | None] = mapped_column(String(500), info={"encrypted": True})


@pytest.fixture
def scratch_table(app):
    _ScratchBase.metadata.create_all(db.engine)
    yield
    db.session.remove()
    _ScratchBase.metadata.drop_all(db.engine)


def test_encrypted_columns_are_discovered_from_column_info():
    assert encrypted_columns(list(_ScratchBase.registry.mappers)) == [(SecretThing, "api_key_encrypted")]


def test_reencrypt_all_rewrites_every_value_under_new_key(app, scratch_table):
    old = get_encryptor()
    db.session.add_all([SecretThing(api_key_encrypted=old.encrypt(f"key-{i}")) for i in range(3)]
                       + [SecretThing(api_key_encrypted=None)])
    db.session.commit()
    new_key = Fernet.generate_key().decode()
    rotated = old.with_new_primary(new_key)
    assert reencrypt_all(rotated, [(SecretThing, "api_key_encrypted")]) == 3
    only_new = Encryptor((new_key,))
    values = db.session.scalars(select(SecretThing.api_key_encrypted).order_by(SecretThing.id)).all()
    assert [only_new.decrypt(v) for v in values[:3]] == ["key-0", "key-1", "key-2"]
    assert values[3] is None


def test_reencrypt_all_writes_nothing_when_a_value_is_unreadable(app, scratch_table):
    old = get_encryptor()
    foreign = Encryptor.from_config(Fernet.generate_key().decode())
    db.session.add_all([SecretThing(api_key_encrypted=old.encrypt("good")),
                        SecretThing(api_key_encrypted=foreign.encrypt("unreadable"))])
    db.session.commit()
    before = db.session.scalars(select(SecretThing.api_key_encrypted).order_by(SecretThing.id)).all()
    with pytest.raises(Exception, match="cannot be decrypted"):
        reencrypt_all(old.with_new_primary(Fernet.generate_key().decode()), [(SecretThing, "api_key_encrypted")])
    after = db.session.scalars(select(SecretThing.api_key_encrypted).order_by(SecretThing.id)).all()
    assert after == before


def test_cli_rotates_and_writes_instance_key_file(app, monkeypatch, tmp_path):
    import app.cli as cli

    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    monkeypatch.setattr(cli, "INSTANCE_DIR", tmp_path)
    original = app.config["ENCRYPTION_KEY"]
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key", "--yes"])
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "encryption_key"
    keys = key_file.read_text().split(",")
    assert len(keys) == 2 and keys[1] == original and keys[0] != original
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert original not in result.output


def test_cli_prints_new_key_list_when_key_comes_from_environment(app, monkeypatch):
    monkeypatch.setenv("ENCRYPTION_KEY", app.config["ENCRYPTION_KEY"])
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key", "--yes"])
    assert result.exit_code == 0
    assert "Set it to the following value" in result.output
    assert app.config["ENCRYPTION_KEY"] in result.output


def test_cli_asks_before_rotating(app):
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key"], input="n\n")
    assert result.exit_code != 0
