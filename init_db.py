"""Database management.

    python init_db.py            create or upgrade the database (Alembic migrations)
    python init_db.py reset      drop all data, then upgrade (asks first; --yes skips)
    python init_db.py testdata   create demo users (development only)
"""

from __future__ import annotations

import argparse
import logging
import sys

from flask_migrate import upgrade
from sqlalchemy import MetaData

from app import create_app
from app.extensions import db

logger = logging.getLogger("init_db")


def upgrade_database() -> None:
    upgrade()
    logger.info("Database is at the latest schema revision")


def reset_database() -> None:
    meta = MetaData()
    meta.reflect(bind=db.engine)
    meta.drop_all(bind=db.engine)
    db.session.remove()
    logger.warning("All tables dropped")
    upgrade_database()


def create_test_data(app) -> list[tuple[str, str, str]]:
    from app.models.users import ROLE_ADMIN, ROLE_TRADER, User
    from app.services.users import find_by_login, generate_one_time_password, hash_password

    if app.config["ENV_NAME"] != "development":
        raise SystemExit("testdata is available in development only")
    created = []
    for username, role in (("demo_admin", ROLE_ADMIN), ("demo_trader", ROLE_TRADER)):
        if find_by_login(username) is not None:
            continue
        password = generate_one_time_password()
        db.session.add(User(username=username, email=f"{username}@example.com",
                            password_hash=hash_password(password), role=role))
        created.append((username, role, password))
    db.session.commit()
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="upgrade", choices=["upgrade", "reset", "testdata"])
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (reset)")
    args = parser.parse_args(argv)
    app = create_app(overrides={"BACKGROUND_SERVICES": "off"})  # a maintenance command never trades
    with app.app_context():
        if args.command == "upgrade":
            upgrade_database()
        elif args.command == "reset":
            if not args.yes:
                answer = input("This deletes ALL data in the database. Type 'reset' to continue: ")
                if answer.strip() != "reset":
                    sys.stdout.write("Aborted; nothing was changed.\n")
                    return 1
            reset_database()
        else:
            upgrade_database()
            for username, role, password in create_test_data(app):
                sys.stdout.write(f"created {role} {username} with password {password}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
