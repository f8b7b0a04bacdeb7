"""Flask CLI commands for operators."""

from __future__ import annotations

import os

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app

from config import INSTANCE_DIR


@click.command("rotate-encryption-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rotate_encryption_key(yes: bool) -> None:
    """Re-encrypt every stored secret with a new key.

    The new key becomes the primary and the old keys stay in the list, so the new list reads
    every value. A process still running with only the old keys cannot read re-encrypted
    values: stop the web and service processes, rotate, then start them with the new list.
    """
    from app.services.encryption import get_encryptor, reencrypt_all

    if not yes:
        click.confirm("Re-encrypt all stored secrets with a new key?", abort=True)
    new_key = Fernet.generate_key().decode()
    rotated = get_encryptor().with_new_primary(new_key)
    key_file = INSTANCE_DIR / "encryption_key"
    # The new key list (new key first, old keys kept) is saved before any row is rewritten:
    # whatever happens next, every stored value stays readable with it.
    if os.environ.get("ENCRYPTION_KEY"):
        click.echo("ENCRYPTION_KEY comes from the environment. Set it to the following value (new key first)")
        click.echo("and restart every process; it reads both the old and the re-encrypted values:")
        click.echo(rotated.serialized())
    else:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(rotated.serialized())
            handle.flush()
            os.fsync(handle.fileno())
    count = reencrypt_all(rotated)
    where = "the environment value above" if os.environ.get("ENCRYPTION_KEY") else str(key_file)
    click.echo(f"Re-encrypted {count} values under the new key; key list in {where}. Restart every process.")
    current_app.config["ENCRYPTION_KEY"] = rotated.serialized()


def init_app(app: Flask) -> None:
    app.cli.add_command(rotate_encryption_key)
