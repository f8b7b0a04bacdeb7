"""Password policy (DOMAIN.md, security defaults)."""

from __future__ import annotations

from functools import cache
from importlib import resources

MIN_LENGTH = 8
MAX_LENGTH = 128
SPECIAL_CHARACTERS = "!@#$%^&*()_+-=[]{}|;:,.<>?"


@cache
def common_passwords() -> frozenset[str]:
    """Lower-cased common passwords shipped with the app (one per line)."""
    text = resources.files("app.domain").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _is_common(password: str) -> bool:
    lowered = password.lower()
    if lowered in common_passwords():
        return True
    # "Password1!" is as weak as "password": strip trailing digits and symbols, then check again.
    core = lowered.rstrip("0123456789" + SPECIAL_CHARACTERS)
    core = core.lstrip("0123456789" + SPECIAL_CHARACTERS)
    return len(core) >= 4 and core in common_passwords()


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """Return what is wrong with a password under the policy.

    Args:
        password: the candidate password, exactly as typed.
        username: when given, a password containing the username is refused too.

    Returns:
        Human-readable problems, empty when the password is acceptable.
    """
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    if not any(c.isupper() for c in password):
        problems.append("Add an upper-case letter.")
    if not any(c.islower() for c in password):
        problems.append("Add a lower-case letter.")
    if not any(c.isdigit() for c in password):
        problems.append("Add a digit.")
    if not any(c in SPECIAL_CHARACTERS for c in password):
        problems.append(f"Add a special character ({SPECIAL_CHARACTERS}).")
    if _is_common(password):
        problems.append("This password is too common; choose another.")
    elif username and len(username) >= 3 and username.lower() in password.lower():
        problems.append("Do not include your username in the password.")
    return problems
