"""Logging to stdout and a rotating file, with the request id on every line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from concurrent_log_handler import ConcurrentRotatingFileHandler
from flask import Flask, g, has_request_context

LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_HANDLER_MARK = "_algomirror_handler"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", "-")
        elif not hasattr(record, "request_id"):
            record.request_id = "-"
        return True


def configure_logging(app: Flask) -> None:
    """Install the app's handlers on the root logger once per process (idempotent)."""
    root = logging.getLogger()
    level = app.config["LOG_LEVEL"]
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if app.config["LOG_TO_FILE"]:
        log_dir = Path(app.config["LOG_DIR"])
        log_dir.mkdir(parents=True, exist_ok=True)
        # Several gunicorn workers write the same file: this handler rotates under a file lock.
        handlers.append(
            ConcurrentRotatingFileHandler(str(log_dir / "algomirror.log"), maxBytes=10 * 1024 * 1024, backupCount=5)
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    # Werkzeug's per-request access lines duplicate ours at INFO.
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
