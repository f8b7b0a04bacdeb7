"""Log lines an operator can read: one line per entry, nothing forged, no per-call chatter at INFO."""

from __future__ import annotations

import io
import logging
import re

import pytest

from app.logging_setup import HTTP_CLIENT_LOGGERS, LOG_FORMAT, SafeFormatter, configure_logging
from tests.helpers import Browserless

FORGED_NAME = "x\nFAKE 2026-01-01 INFO forged"
ENTRY_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[")


@pytest.fixture
def logged_app(app_factory, tmp_path):
    """An app that writes logs/algomirror.log into tmp_path, as a deployment does."""
    application = app_factory(LOG_TO_FILE=True, LOG_DIR=str(tmp_path))
    yield application, tmp_path / "algomirror.log"
    # Detach the file handler from the root logger before tmp_path goes away.
    application.config["LOG_TO_FILE"] = False
    configure_logging(application)


def _formatter_output(emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    logger = logging.getLogger("tests.logging.probe")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_failed_login_with_newline_in_username_writes_one_log_line(logged_app):
    application, log_file = logged_app
    client = Browserless(application.test_client())

    response = client.login(FORGED_NAME, password="wrong-password")

    assert response.status_code in (400, 401)
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = log_file.read_text().splitlines()
    # The login name may be lower-cased before it is logged; what matters is one line, escaped.
    mentions = [line.lower() for line in lines if "fake" in line.lower()]
    assert len(mentions) == 1 and "user=x\\nfake 2026-01-01 info forged" in mentions[0]
    assert all(ENTRY_START.match(line) for line in lines), lines


def test_message_control_characters_are_escaped_on_one_line():
    out = _formatter_output(lambda log: log.warning("account %s renamed", "Main\r\n\x1b[2J\x00\u2028end",
                                                    extra={"request_id": "-"}))
    assert out.count("\n") == 1
    assert out.endswith("tests.logging.probe: account Main\\r\\n\\x1b[2J\\x00\\u2028end renamed\n")


def test_traceback_lines_are_indented_so_no_line_looks_like_an_entry():
    def emit(log):
        try:
            raise ValueError("bad name\n2026-01-01 00:00:00,000 INFO [-] app: forged")
        except ValueError:
            log.exception("lookup failed", extra={"request_id": "-"})

    lines = _formatter_output(emit).splitlines()
    assert ENTRY_START.match(lines[0]) and lines[0].endswith("lookup failed")
    assert lines[1] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") for line in lines[1:])
    assert lines[-2:] == ["    ValueError: bad name", "    2026-01-01 00:00:00,000 INFO [-] app: forged"]


def test_the_record_is_left_unchanged_for_other_handlers():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a\nb", None, None)
    record.request_id = "-"
    SafeFormatter(LOG_FORMAT).format(record)
    assert record.message == "a\nb"


@pytest.mark.parametrize(("level", "expected"), [("INFO", logging.WARNING), ("WARNING", logging.WARNING),
                                                 ("DEBUG", logging.DEBUG)])
def test_http_client_loggers_are_quiet_unless_debugging(app_factory, level, expected):
    app_factory(LOG_LEVEL=level)
    assert logging.getLogger("httpx").level == expected
    assert logging.getLogger("urllib3").level == expected
    assert logging.getLogger("httpcore").level == logging.WARNING
    assert set(HTTP_CLIENT_LOGGERS) == {"httpx", "httpcore", "urllib3"}


def test_broker_calls_write_nothing_at_info(app, broker, apikey, caplog):
    from app.broker.client import OpenAlgoClient

    client = OpenAlgoClient(broker.url, apikey, account_label="probe")
    caplog.set_level(logging.INFO)
    try:
        client.ping()
        client.funds()
    finally:
        client.close()
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO] == []


def test_broker_calls_are_logged_at_debug(app, broker, apikey, caplog):
    from app.broker.client import OpenAlgoClient

    client = OpenAlgoClient(broker.url, apikey, account_label="probe")
    caplog.set_level(logging.DEBUG, logger="app.broker.client")
    try:
        client.ping()
    finally:
        client.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "app.broker.client"]
    assert len(messages) == 1 and messages[0].startswith("broker call account=probe endpoint=ping ")


def test_a_feed_that_cannot_connect_warns_once_then_retries_quietly(caplog):
    import socket

    from app.broker.feed import FeedClient
    from tests.helpers import wait_until

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="app.broker.feed")
    feed = FeedClient(f"ws://127.0.0.1:{port}", "k" * 32, lambda tick: None, name="dead", backoff=[0.01],
                      connect_timeout=1.0)
    feed.start()
    try:
        wait_until(lambda: feed.status().attempts >= 4, timeout=60)
    finally:
        feed.close()
    feed_records = [r for r in caplog.records if r.name == "app.broker.feed"]
    assert [r.getMessage() for r in feed_records if r.levelno >= logging.INFO] == [
        next(r.getMessage() for r in feed_records if "connection lost" in r.getMessage())]
    assert sum("connection lost" in r.getMessage() for r in feed_records) >= 3
