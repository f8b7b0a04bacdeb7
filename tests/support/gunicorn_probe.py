"""gunicorn settings for tests/test_boot_race.py: every worker reports the secrets it built its app with.

Each worker writes a digest of its SECRET_KEY and ENCRYPTION_KEY to PROBE_DIR/<pid> after
it has loaded the app, so the test can check that all workers of one server agree.
"""

import hashlib
import os
from pathlib import Path

worker_class = "gthread"
threads = 2
timeout = 120
preload_app = False  # as in production: each worker builds its own app, which is what races
accesslog = None
errorlog = "-"
loglevel = "warning"


def post_worker_init(worker) -> None:
    settings = worker.wsgi.config
    digest = hashlib.sha256(f"{settings['SECRET_KEY']}|{settings['ENCRYPTION_KEY']}".encode()).hexdigest()
    target = Path(os.environ["PROBE_DIR"])
    tmp = target / f".{os.getpid()}.tmp"
    tmp.write_text(digest)
    tmp.rename(target / str(os.getpid()))  # appears complete, never half-written
