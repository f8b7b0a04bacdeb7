"""Keep API keys and the admin token out of the log.

The paper broker prints its keys once, on stdout, at start-up (``api_key=...`` lines, so that scripts
can read them). Nothing it logs afterwards names a key: there is no access log, and no log line formats
a request body or a key. This filter is the safety net for what code cannot promise, such as an
exception message that happens to quote a key: every record reaching a handler has each live secret
replaced by ``…`` and its last four characters, in the message and in the traceback text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

MASK = "…"


def mask(secret: str) -> str:
    """What a log shows instead of ``secret``: its last four characters after an ellipsis."""
    return MASK + secret[-4:]


class RedactSecrets(logging.Filter):
    """A handler filter that masks every secret ``secrets()`` has returned (read at each record).

    The filter also remembers every secret it was shown, so a key stays masked once it is gone.
    """

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._secrets = secrets
        self._known: set[str] = set()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        trace = record.exc_text or ""
        self._known.update(s for s in self._secrets() if len(s) >= 8)
        found = [s for s in self._known if s in message or s in trace]
        if found:
            for secret in sorted(found, key=len, reverse=True):
                message = message.replace(secret, mask(secret))
                trace = trace.replace(secret, mask(secret))
            record.msg, record.args = message, None
            if record.exc_text:
                record.exc_text = trace
        return True


def install(secrets: Callable[[], Iterable[str]], logger: logging.Logger | None = None) -> RedactSecrets:
    """Add one ``RedactSecrets`` to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    flt = RedactSecrets(secrets)
    for handler in target.handlers:
        handler.addFilter(flt)
    return flt
