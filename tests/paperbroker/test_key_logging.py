"""The paper broker prints API keys once, at start-up, and never writes one to its log per request."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import websocket

from paperbroker.logsafe import RedactSecrets
from tests.support.paperbroker import ADMIN_TOKEN, START

CUSTOM_KEY = "custom-key-0123456789abcdef-logging-test"
WRONG_KEY = "f" * 64


def test_requests_never_write_a_key_to_the_log(tmp_path: Path) -> None:
    # Arrange: a broker logging at DEBUG into a file, as `make run` sends its output to logs/.
    log_path = tmp_path / "paperbroker.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paperbroker", "--port", "0", "--ws-port", "0", "--accounts", "1",
             "--admin-token", ADMIN_TOKEN, "--deterministic", "--start-time", START, "--log-level", "debug"],
            stdout=subprocess.PIPE, stderr=log_file, text=True)
        assert proc.stdout is not None
        start_lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                start_lines.append(line.strip())
                if line.startswith("paperbroker ready"):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            assert ready.wait(30), start_lines
            fields = dict(p.split("=", 1) for p in start_lines[-1].split() if "=" in p)
            [key] = [ln.split("=", 1)[1] for ln in start_lines if ln.startswith("api_key=")]
            base = f"http://127.0.0.1:{fields['http_port']}"
            admin = {"X-Admin-Token": ADMIN_TOKEN}

            # Act: the requests that could leak a key: valid, refused, in a query string, in a broken
            # body, in an admin path, over the WebSocket.
            with httpx.Client(base_url=base, timeout=20) as http:
                assert http.post("/api/v1/funds", json={"apikey": key}).status_code == 200
                assert http.post("/api/v1/funds", json={"apikey": WRONG_KEY}).status_code == 403
                assert http.get("/api/v1/instruments", params={"apikey": key}).status_code == 200
                assert http.post("/api/v1/funds", content=f'{{"apikey": "{key}"',
                                 headers={"Content-Type": "application/json"}).status_code == 400
                assert http.post("/api/v1/nosuchroute", json={"apikey": key}).status_code == 404
                assert http.post("/sim/accounts", json={"apikey": CUSTOM_KEY}, headers=admin).status_code == 200
                assert http.post("/api/v1/placeorder", json={
                    "apikey": CUSTOM_KEY, "strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
                    "quantity": 1, "pricetype": "MARKET", "product": "MIS"}).status_code == 200
                assert http.delete(f"/sim/accounts/{CUSTOM_KEY}", headers=admin).status_code == 200
            ws = websocket.create_connection(f"ws://127.0.0.1:{fields['ws_port']}", timeout=10)
            ws.send(json.dumps({"action": "authenticate", "api_key": key}))
            assert json.loads(ws.recv())["status"] == "success"
            ws.send(json.dumps({"action": "authenticate", "api_key": WRONG_KEY}))
            ws.recv()
            ws.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)

    # Assert: the log has lines (DEBUG really was on), none of them names a key or the admin token;
    # the keys appear only in the start-up lines on stdout.
    log_text = log_path.read_text()
    assert "shutting down" in log_text
    for secret in (key, CUSTOM_KEY, WRONG_KEY, ADMIN_TOKEN):
        assert secret not in log_text
    assert [ln for ln in start_lines if key in ln] == [f"api_key={key}"]


def test_redaction_masks_a_key_in_a_message_and_a_traceback() -> None:
    # Arrange
    key = "0123456789abcdef" * 4
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(RedactSecrets(lambda: [key]))
    log = logging.getLogger("tests.paperbroker.redaction")
    log.addHandler(handler)
    log.propagate = False
    # Act
    try:
        raise KeyError(key)
    except KeyError:
        log.exception("lookup of %s failed", key)
    log.removeHandler(handler)
    # Assert
    [text] = records
    assert key not in text
    assert text.count("…cdef") == 2  # once in the message, once in the traceback's KeyError line
