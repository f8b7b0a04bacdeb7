"""Several processes starting at once on an empty instance/ agree on one set of secrets.

gunicorn forks its workers and each builds the app, so on a first start they race to
create instance/secret_key and instance/encryption_key. Exactly one writer must win and
every process must read the winner's value.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import config

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PROBE_CONF = ROOT / "tests" / "support" / "gunicorn_probe.py"
# Real `gunicorn -w 3` cold starts per test run (each builds the app three times, which costs
# CPU); BOOT_RACE_GUNICORN_STARTS=20 runs the full count of the issue.
GUNICORN_STARTS = int(os.environ.get("BOOT_RACE_GUNICORN_STARTS", "3"))
GUNICORN_BATCH = 3
BOOT_DEADLINE_SECONDS = 180.0


def _racing_factory(barrier: threading.Barrier):
    def factory() -> str:
        # Every contender has seen "no file" before anyone writes: the worst case, every time.
        barrier.wait(timeout=30)
        return secrets.token_hex(32)

    return factory


def test_threads_racing_on_an_empty_directory_all_get_the_winners_value(tmp_path):
    contenders, rounds = 16, 10
    for round_no in range(rounds):
        folder = tmp_path / f"round{round_no}"
        barrier = threading.Barrier(contenders)
        results: list[str] = []
        errors: list[BaseException] = []

        def contend(folder=folder, barrier=barrier, results=results, errors=errors):
            try:
                results.append(config.read_or_create_instance_secret("secret_key", _racing_factory(barrier), folder))
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=contend) for _ in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        assert len(results) == contenders and len(set(results)) == 1
        path = folder / "secret_key"
        assert path.read_text() == results[0]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in folder.iterdir()) == ["secret_key"]  # no temporary file left


def _process_contender(folders: list[str], barrier, out) -> None:
    for folder in folders:
        # Every process checks for the file, then all write at once (the barrier sits in the factory).
        value = config.read_or_create_instance_secret(
            "encryption_key", lambda: (barrier.wait(timeout=60), secrets.token_hex(32))[1], Path(folder))
        out.put((folder, value))


def test_processes_racing_on_an_empty_directory_all_get_the_winners_value(tmp_path):
    contenders, rounds = 6, 8
    folders = [str(tmp_path / f"round{i}") for i in range(rounds)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(contenders), ctx.Queue()
    procs = [ctx.Process(target=_process_contender, args=(folders, barrier, out)) for _ in range(contenders)]
    for proc in procs:
        proc.start()
    seen: dict[str, set[str]] = {}
    for _ in range(contenders * rounds):
        folder, value = out.get(timeout=120)
        seen.setdefault(folder, set()).add(value)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    assert sorted(seen) == sorted(folders)
    for folder, values in seen.items():
        assert len(values) == 1
        assert (Path(folder) / "encryption_key").read_text() == next(iter(values))


def test_filesystem_without_hard_links_falls_back_to_exclusive_create(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(config.os, "link", no_links)
    first = config.read_or_create_instance_secret("secret_key", lambda: "first", tmp_path)
    second = config.read_or_create_instance_secret("secret_key", lambda: "second", tmp_path)
    assert first == second == "first"
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]


def test_existing_empty_secret_file_is_refused_after_waiting(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(config.ConfigError, match="empty"):
        config._read_secret(tmp_path / "secret_key", wait_seconds=0.2)


def test_secret_written_while_a_reader_waits_is_read(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("")
    writer = threading.Timer(0.2, lambda: path.write_text("from-the-winner"))
    writer.start()
    try:
        assert config._read_secret(path, wait_seconds=30) == "from-the-winner"
    finally:
        writer.join()


# --- whole-config cold starts: three forked processes load the development config at once ---

_FORK_SCRIPT = """
import hashlib, os, sys
from pathlib import Path
import config

gate_read, gate_write = os.pipe()
children = []
for folder in sys.argv[1:]:
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            os.close(gate_write)
            os.read(gate_read, 1)  # blocks until the parent closes the gate: all start together
            config.INSTANCE_DIR = Path(folder)
            try:
                s = config.DevelopmentConfig.load()
                digest = hashlib.sha256((s["SECRET_KEY"] + "|" + s["ENCRYPTION_KEY"]).encode()).hexdigest()
                os.write(1, f"{folder} {digest}\\n".encode())  # one write per line: children share stdout
                os._exit(0)
            except BaseException as exc:
                os.write(1, f"{folder} ERROR {type(exc).__name__}: {exc}\\n".encode())
                os._exit(1)
        children.append(pid)
os.close(gate_write)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
sys.exit(max(codes))
"""


def _instance_digest(folder: Path) -> str:
    secret, key = ((folder / n).read_text().strip() for n in ("secret_key", "encryption_key"))
    return hashlib.sha256(f"{secret}|{key}".encode()).hexdigest()


def test_twenty_cold_starts_of_three_forked_processes_agree_on_the_secrets(tmp_path):
    folders = [tmp_path / f"start{i}" for i in range(20)]
    done = subprocess.run([sys.executable, "-c", _FORK_SCRIPT, *map(str, folders)], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert len(lines) == 60
    for folder in folders:
        digests = {digest for name, digest in lines if name == str(folder)}
        assert digests == {_instance_digest(folder)}


# --- real gunicorn -w 3 cold starts ---------------------------------------------------------

def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL", "FLASK_ENV", "INSTANCE_PATH"}}
    env.update(APP_ENV="development", LOG_TO_FILE="false", BACKGROUND_SERVICES="off", PYTHONUNBUFFERED="1")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Start:
    def __init__(self, base: Path, number: int):
        self.instance = base / f"instance{number}"
        self.probes = base / f"probes{number}"
        self.probes.mkdir(parents=True)
        self.port = _free_port()
        self.log = (base / f"gunicorn{number}.log").open("w+")
        env = {**_clean_env(), "INSTANCE_PATH": str(self.instance), "PROBE_DIR": str(self.probes),
               "DATABASE_URL": f"sqlite:///{base / f'db{number}.sqlite'}"}
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-c", str(PROBE_CONF), "-w", "3", "-b", f"127.0.0.1:{self.port}", "app:app"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def booted(self) -> bool:
        """All three workers built the app and the server answers /healthz."""
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
        if len(self.digests()) < 3:
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json() == {"status": "ok"}
        except httpx.HTTPError:
            return False

    def digests(self) -> list[str]:
        return [p.read_text() for p in self.probes.iterdir() if not p.name.startswith(".")]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()


@pytest.mark.skipif(not GUNICORN.exists(), reason="the project's .venv has no gunicorn")
def test_gunicorn_three_workers_cold_starts_boot_and_agree_on_the_secrets(tmp_path):
    for batch_start in range(0, GUNICORN_STARTS, GUNICORN_BATCH):
        numbers = range(batch_start, min(batch_start + GUNICORN_BATCH, GUNICORN_STARTS))
        starts = [_Start(tmp_path, n) for n in numbers]
        try:
            deadline = time.monotonic() + BOOT_DEADLINE_SECONDS
            pending = list(starts)
            while pending:
                pending = [s for s in pending if not s.booted()]
                if pending and time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not boot in time:\n" + pending[0].output())
                if pending:
                    time.sleep(0.2)  # polling interval of the boot condition, not a wait for an outcome
            for start in starts:
                digests = start.digests()
                assert len(digests) == 3
                assert set(digests) == {_instance_digest(start.instance)}, start.output()
                assert "FileExistsError" not in start.output()
        finally:
            for start in starts:
                start.stop()
