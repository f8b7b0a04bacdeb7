"""Start-up cost: a request that does not talk to a broker does not load the SDK (pandas, numpy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from app import create_app

app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{sys.argv[1]}", "LOG_LEVEL": "WARNING"})
if "--migrate" in sys.argv:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
client = app.test_client()
status = [client.get("/healthz").status_code, client.get("/auth/login").status_code]
heavy = ("openalgo", "pandas", "numpy", "numba", "talib")
before = sorted(m for m in heavy if m in sys.modules)
if "--build-client" in sys.argv:
    from app.broker.client import OpenAlgoClient

    OpenAlgoClient("http://127.0.0.1:9", "k" * 64).close()
after = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"status": status, "before": before, "after": after}))
"""


def _probe(tmp_path: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "probe.db"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_healthz_and_login_page_in_a_fresh_process_do_not_import_the_sdk_or_pandas(tmp_path):
    result = _probe(tmp_path, "--migrate")
    assert result["status"] == [200, 200]
    assert result["before"] == []


def test_building_the_first_client_imports_the_sdk(tmp_path):
    result = _probe(tmp_path, "--build-client")
    assert result["before"] == []
    assert {"openalgo", "pandas"} <= set(result["after"])
