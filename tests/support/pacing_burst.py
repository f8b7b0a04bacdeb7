"""One process of the cross-process pacing test: its own OpenAlgoClient bursts reads at an account.

Usage: python -m tests.support.pacing_burst HOST_URL API_KEY COUNT REDIS_URL|- KEY_PREFIX

Prints "ready" once the client exists, waits for a line on stdin (so that several processes
start their bursts together), sends COUNT funds calls from 20 threads, and prints one JSON line:
{"ok": n, "http_429": n, "other": {"ErrorName": n}}.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


def main(argv: list[str]) -> None:
    host_url, api_key, count, redis_url, prefix = argv
    from app.broker.client import ClientSettings, OpenAlgoClient
    from app.broker.errors import BrokerError

    settings = ClientSettings(reads_per_second=50, pacing_redis_url=None if redis_url == "-" else redis_url,
                              pacing_key_prefix=prefix, pacing_max_wait=120.0)
    client = OpenAlgoClient(host_url, api_key, account_label="burst", settings=settings)

    def one(_: int) -> str:
        try:
            client.funds()
        except BrokerError as exc:
            return "http_429" if exc.status_code == 429 else type(exc).__name__
        return "ok"

    print("ready", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(one, range(int(count))))
    client.close()
    ok, limited = outcomes.pop("ok", 0), outcomes.pop("http_429", 0)
    print(json.dumps({"ok": ok, "http_429": limited, "other": dict(outcomes)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
