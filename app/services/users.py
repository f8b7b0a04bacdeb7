"""User lifecycle: registration, authentication, passwords, and admin actions."""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.domain.passwords import SPECIAL_CHARACTERS, password_problems
from app.extensions import db
from app.models.settings import AppSetting
from app.models.types import UTCDateTime, utcnow
from app.models.users import ROLE_ADMIN, ROLE_TRADER, ROLES, User
from app.services import audit, sessions
from app.services.settings import ADMIN_BOOTSTRAPPED, REGISTRATION_OPEN, get_setting, registration_open, set_setting

logger = logging.getLogger(__name__)

PASSWORD_METHOD = "scrypt"
# A real scrypt hash (default cost) checked when the username does not exist, so both paths cost
# the same. Precomputed from a random string nobody knows: hashing it at import cost every new
# process about 0.1-0.4 s of CPU and 32 MB of scrypt memory before serving anything.
_DUMMY_HASH = ("scrypt:32768:8:1$WPZjQDyrXIgN9qdM$cbad6273d08468f0495fa458fea9f873d49729efa7f3db516a49ec1139f"
               "e4ae3b86888749de39a32357828a221bccb9d4ac65f68f086ca366638135c74dc8f29")


class UserError(Exception):
    """A user action was refused; `field` names the form field to attach the message to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", PASSWORD_METHOD))


def normalize_username(username: str) -> str:
    return username.strip().lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_by_login(identifier: str) -> User | None:
    ident = identifier.strip().lower()
    # No stored name or email contains NUL, and PostgreSQL refuses it in a query parameter.
    if not ident or "\x00" in ident:
        return None
    column = User.email if "@" in ident else User.username
    return db.session.scalar(select(User).where(column == ident))


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def active_admin_count() -> int:
    stmt = select(func.count()).select_from(User).where(User.role == ROLE_ADMIN, User.active.is_(True))
    return db.session.scalar(stmt) or 0


def check_new_password(password: str, username: str | None) -> None:
    problems = password_problems(password, username=username)
    if problems:
        raise UserError(" ".join(problems), field="password")


def _ensure_unique(username: str, email: str) -> None:
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError("This username is taken.", field="username")
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError("An account with this email exists.", field="email")


def register(username: str, email: str, password: str) -> User:
    """Public registration. The first user becomes admin; later ones need registration open."""
    username, email = normalize_username(username), normalize_email(email)
    first_user = user_count() == 0
    if not first_user and not registration_open():
        raise UserError("Registration is closed. Ask an administrator for an account.")
    check_new_password(password, username)
    _ensure_unique(username, email)
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password),
        role=ROLE_ADMIN if first_user else ROLE_TRADER,
        password_changed_at=utcnow(),
    )
    db.session.add(user)
    if first_user:
        # The bootstrap marker's primary key makes "first user" atomic: of two racing first
        # registrations, one commit fails instead of creating a second admin.
        db.session.add(AppSetting(key=ADMIN_BOOTSTRAPPED, value=username))
    try:
        db.session.flush()
        audit.record("register", category="auth", user=user, details={"role": user.role}, commit=False)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        if first_user and get_setting(ADMIN_BOOTSTRAPPED) is not None:
            raise UserError("Registration is closed. Ask an administrator for an account.") from exc
        raise UserError("This username or email is taken.", field="username") from exc
    return user


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.error is None


# One message for every failure (unknown user, wrong password, locked, inactive): the response
# must not tell an attacker which usernames exist.
GENERIC_LOGIN_ERROR = (
    "Invalid username or password. After repeated failures, sign-in is paused for a while."
)


def verify_password(password_hash: str, password: str) -> bool:
    """The one place a user's real password hash is checked (tests count the calls)."""
    return check_password_hash(password_hash, password)


def _spend_like_a_check(password: str) -> None:
    # An unknown or locked username costs the same scrypt work as a real check, so timing does
    # not reveal which it was.
    check_password_hash(_DUMMY_HASH, password)


def typed_login_name(identifier: str) -> str:
    """The login name as typed, safe to store in the audit log (no NUL, at most 64 characters)."""
    return identifier.strip().lower().replace("\x00", "\ufffd")[:64]


def authenticate(identifier: str, password: str) -> LoginResult:
    """Check credentials, apply lockout, and audit the attempt.

    Lockout holds under concurrency: an attempt first claims one of the policy's
    LOGIN_MAX_FAILURES slots in one conditional UPDATE (`_claim_attempt`), and only an
    attempt that got a slot reaches the password hash. The attempt that took the last slot
    and failed writes the lock and the one `account_locked` event.
    The error text never tells whether the username exists.
    """
    user = find_by_login(identifier)
    if user is None:
        _spend_like_a_check(password)
        audit.record("login", category="auth", success=False, username=typed_login_name(identifier),
                     details={"reason": "bad_credentials"})
        return LoginResult(None, GENERIC_LOGIN_ERROR)
    slot = _claim_attempt(user.id)
    if slot is None:
        _spend_like_a_check(password)
        audit.record("login", category="auth", user=user, success=False, details={"reason": "locked"})
        return LoginResult(None, GENERIC_LOGIN_ERROR)
    if not verify_password(user.password_hash, password):
        _register_failure(user, slot, "login", {"reason": "bad_credentials", "failures": slot})
        return LoginResult(None, GENERIC_LOGIN_ERROR)
    _clear_failures(user.id)
    if not user.is_active:
        # Correct password on a deactivated account: same generic message, audited separately.
        audit.record("login", category="auth", user=user, success=False, details={"reason": "inactive"})
        return LoginResult(None, GENERIC_LOGIN_ERROR)
    user.last_login_at = utcnow()
    audit.record("login", category="auth", user=user, commit=False)
    db.session.commit()
    return LoginResult(user)


def _claim_attempt(user_id: int) -> int | None:
    """Count one password check against the user before it happens, atomically.

    One UPDATE ... RETURNING both decides and counts: it matches only when the user is not
    locked and fewer than LOGIN_MAX_FAILURES attempts were counted in the current window
    (a window older than LOGIN_FAILURE_WINDOW_MINUTES starts again at 1). SQLite serialises
    writers and PostgreSQL re-checks the WHERE clause on the locked row, so of N parallel
    attempts exactly the policy's number get a slot. Committed at once: no lock is held
    during the password hash.

    Returns:
        The attempt's number in the window (1..LOGIN_MAX_FAILURES), or None when the
        password must not be checked (locked, or every slot taken by attempts in flight).
    """
    cfg = current_app.config
    now = utcnow()
    window_start = now - timedelta(minutes=cfg["LOGIN_FAILURE_WINDOW_MINUTES"])
    new_window = or_(User.first_failed_login_at.is_(None), User.first_failed_login_at <= window_start)
    stmt = (
        update(User)
        .where(User.id == user_id,
               or_(User.locked_until.is_(None), User.locked_until <= now),
               or_(new_window, User.failed_login_count < cfg["LOGIN_MAX_FAILURES"]))
        .values(failed_login_count=case((new_window, 1), else_=User.failed_login_count + 1),
                first_failed_login_at=case((new_window, literal(now, UTCDateTime())),
                                           else_=User.first_failed_login_at))
        .returning(User.failed_login_count)
        .execution_options(synchronize_session=False)
    )
    slot = db.session.scalar(stmt)
    db.session.commit()
    return slot


def _clear_failures(user_id: int) -> None:
    """The password was right: the attempts counted in this window are forgiven."""
    db.session.execute(
        update(User).where(User.id == user_id)
        .values(failed_login_count=0, first_failed_login_at=None)
        .execution_options(synchronize_session=False))
    db.session.commit()


def _register_failure(user: User, slot: int, action: str, details: dict) -> None:
    """Audit a wrong password; the attempt that took the last slot locks the username."""
    cfg = current_app.config
    audit.record(action, category="auth", user=user, success=False, details=details, commit=False)
    if slot >= cfg["LOGIN_MAX_FAILURES"]:
        db.session.execute(
            update(User).where(User.id == user.id)
            .values(locked_until=utcnow() + timedelta(minutes=cfg["LOCKOUT_MINUTES"]),
                    failed_login_count=0, first_failed_login_at=None)
            .execution_options(synchronize_session=False))
        audit.record("account_locked", category="security", user=user, success=False,
                     details={"minutes": cfg["LOCKOUT_MINUTES"], "via": action}, commit=False)
        logger.warning("Username %r locked after repeated wrong passwords", user.username)
    db.session.commit()


LOCKED_CHANGE_ERROR = "Too many wrong passwords. Try again later."


def change_password(user: User, current_password: str, new_password: str, *,
                    keep_session_id: int | None) -> int:
    """Change a password and end every other sign-in of the user.

    A wrong current password counts towards the login lockout like a failed login.

    Args:
        user: the signed-in user.
        current_password, new_password: as typed.
        keep_session_id: this browser's sign-in, which stays signed in.

    Returns:
        How many other sign-ins were ended.

    Raises:
        UserError: wrong current password, locked, or a new password the policy refuses.
    """
    if current_password == new_password:
        raise UserError("Choose a password different from the current one.", field="password")
    check_new_password(new_password, user.username)
    slot = _claim_attempt(user.id)
    if slot is None:
        audit.record("password_change", category="auth", user=user, success=False, details={"reason": "locked"})
        raise UserError(LOCKED_CHANGE_ERROR, field="current_password")
    if not verify_password(user.password_hash, current_password):
        _register_failure(user, slot, "password_change", {"reason": "wrong_current_password", "failures": slot})
        raise UserError("The current password is not correct.", field="current_password")
    _set_password(user, new_password, must_change=False)
    ended = sessions.revoke_all(user.id, sessions.REASON_PASSWORD_CHANGE, keep_id=keep_session_id)
    audit.record("password_change", category="auth", user=user, details={"sessions_ended": ended}, commit=False)
    db.session.commit()
    return ended


def _set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    user.failed_login_count = 0
    user.locked_until = None
    user.first_failed_login_at = None


def generate_one_time_password(length: int = 16) -> str:
    """A random password that satisfies the policy."""
    alphabet = string.ascii_letters + string.digits + SPECIAL_CHARACTERS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(candidate):
            return candidate


# --- admin actions -------------------------------------------------------------------------------

def admin_create_user(admin: User, username: str, email: str, role: str) -> tuple[User, str]:
    """Create a user with a one-time password that must be changed at first login."""
    if role not in ROLES:
        raise UserError("Unknown role.", field="role")
    username, email = normalize_username(username), normalize_email(email)
    _ensure_unique(username, email)
    otp = generate_one_time_password()
    user = User(username=username, email=email, password_hash=hash_password(otp), role=role,
                must_change_password=True, password_changed_at=utcnow())
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise UserError("This username or email is taken.", field="username") from exc
    audit.record("user_created", category="admin", user=admin,
                 details={"target": username, "target_id": user.id, "role": role}, commit=False)
    db.session.commit()
    return user, otp


def _would_remove_last_admin(target: User) -> bool:
    return target.is_admin and target.active and active_admin_count() <= 1


def admin_set_active(admin: User, target: User, active: bool) -> None:
    if target.active == active:
        return
    if not active and _would_remove_last_admin(target):
        raise UserError("The last active administrator cannot be deactivated.")
    target.active = active
    details: dict = {"target": target.username, "target_id": target.id}
    if not active:
        details["sessions_ended"] = sessions.revoke_all(target.id, sessions.REASON_DEACTIVATED)
    action = "user_reactivated" if active else "user_deactivated"
    audit.record(action, category="admin", user=admin, details=details, commit=False)
    db.session.commit()


def admin_set_role(admin: User, target: User, role: str) -> None:
    if role not in ROLES:
        raise UserError("Unknown role.")
    if target.role == role:
        return
    if role == ROLE_TRADER and _would_remove_last_admin(target):
        raise UserError("The last active administrator cannot be demoted.")
    previous, target.role = target.role, role
    audit.record("user_role_changed", category="admin", user=admin,
                 details={"target": target.username, "target_id": target.id, "from": previous, "to": role},
                 commit=False)
    db.session.commit()


def admin_reset_password(admin: User, target: User) -> str:
    """Give the target a new one-time password; every sign-in of theirs ends."""
    otp = generate_one_time_password()
    _set_password(target, otp, must_change=True)
    ended = sessions.revoke_all(target.id, sessions.REASON_PASSWORD_RESET)
    audit.record("user_password_reset", category="admin", user=admin,
                 details={"target": target.username, "target_id": target.id, "sessions_ended": ended},
                 commit=False)
    db.session.commit()
    return otp


def admin_end_sessions(admin: User, target: User) -> int:
    """End every sign-in of the target (they stay active and may sign in again); audited."""
    ended = sessions.revoke_all(target.id, sessions.REASON_ENDED_BY_ADMIN)
    audit.record("user_sessions_ended", category="admin", user=admin,
                 details={"target": target.username, "target_id": target.id, "sessions_ended": ended},
                 commit=False)
    db.session.commit()
    return ended


def admin_set_registration(admin: User, open_: bool) -> None:
    set_setting(REGISTRATION_OPEN, "true" if open_ else "false", commit=False)
    audit.record("registration_opened" if open_ else "registration_closed", category="admin", user=admin,
                 commit=False)
    db.session.commit()


__all__ = ["ROLE_ADMIN", "ROLE_TRADER", "UserError"]
