"""``python -m paperbroker`` / the ``paperbroker`` console script."""

from __future__ import annotations

import asyncio
import logging
import sys

from paperbroker.config import ConfigError, load_config
from paperbroker.server import serve


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the broker until SIGINT/SIGTERM; returns the exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(argv)
    except ConfigError as exc:
        sys.stderr.write(f"paperbroker: {exc}\n")
        return 2
    try:
        asyncio.run(serve(cfg))
    except OSError as exc:
        sys.stderr.write(f"paperbroker: cannot start: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
