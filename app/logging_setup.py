"""Logging to stdout and a rotating file, with the request id on every line.

Every entry is one line that starts with its timestamp: control characters in the message
(a username with CR/LF, a terminal escape in an account name) are written as escapes by
the formatter, so user-supplied values can never forge or hide an entry. The only
multi-line part of an entry is a traceback, and each of its lines is indented.

INFO is for events (sign-ins, account and status changes, service starts); per-call detail
is DEBUG. The HTTP client libraries log every request at INFO, so they are kept at WARNING
unless LOG_LEVEL is DEBUG.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from concurrent_log_handler import ConcurrentRotatingFileHandler
from flask import Flask, g, has_request_context

from app.text_safety import escape_control_characters

LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_HANDLER_MARK = "_algomirror_handler"
# Libraries that write one INFO line per HTTP request ("HTTP Request: POST ...").
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore", "urllib3")
TRACEBACK_INDENT = "    "


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", "-")
        elif not hasattr(record, "request_id"):
            record.request_id = "-"
        return True


class SafeFormatter(logging.Formatter):
    """A Formatter whose entries cannot be forged: the message is escaped, tracebacks are indented."""

    def format(self, record: logging.LogRecord) -> str:
        # As logging.Formatter.format, but never reuses record.exc_text: another handler's
        # formatter may have cached an unindented traceback there.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + _indented(record.exc_text)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = escape_control_characters(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message  # other handlers (and their formatters) see the record unchanged

    def formatException(self, ei) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    # Each line keeps its own text but can never start at column 0, where entries begin.
    return "\n".join(TRACEBACK_INDENT + escape_control_characters(line) for line in text.splitlines())


def configure_logging(app: Flask) -> None:
    """Install the app's handlers on the root logger once per process (idempotent)."""
    root = logging.getLogger()
    level = app.config["LOG_LEVEL"]
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    formatter = SafeFormatter(LOG_FORMAT)
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
    numeric_level = logging.getLevelName(level)
    # Werkzeug's per-request access lines duplicate ours at INFO.
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, numeric_level))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for name in HTTP_CLIENT_LOGGERS:
        # httpcore's DEBUG is a trace of every socket event: too much even when debugging.
        quiet = logging.WARNING if numeric_level > logging.DEBUG or name == "httpcore" else logging.DEBUG
        logging.getLogger(name).setLevel(quiet)
