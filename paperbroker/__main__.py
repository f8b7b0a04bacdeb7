"""``python -m paperbroker`` / the ``paperbroker`` console script."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from paperbroker.config import ConfigError, load_config
from paperbroker.server import serve


def _run(main_coro: Coroutine[Any, Any, None]) -> None:
    """uvloop's event loop where it is installed (about half the per-request loop cost), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coro)
    else:
        uvloop.run(main_coro)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the broker until SIGINT/SIGTERM; returns the exit status."""
    try:
        cfg = load_config(argv)
    except ConfigError as exc:
        sys.stderr.write(f"paperbroker: {exc}\n")
        return 2
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _run(serve(cfg))
    except OSError as exc:
        sys.stderr.write(f"paperbroker: cannot start: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
