"""The openalgo SDK (2.x) with the calls it lacks, imported only when the first client is built.

The SDK imports pandas (and numpy) at import time: about 0.6 s and tens of MB per process.
Pages that never talk to a broker (login, health checks, admin) must not pay for it, so
nothing here imports openalgo at module level; ``new_api()`` does, once, on first use.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_api_class: type | None = None


def _build_api_class() -> type:
    import openalgo  # lazy on purpose: see the module docstring

    class ExtendedOpenAlgoAPI(openalgo.api):
        """openalgo.api plus `ping()` (absent in SDK 2.0.5) and a raw `post()` for such calls."""

        def post(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
            """POST with the SDK's transport; non-200 JSON bodies come back with `code` set."""
            return self._post(endpoint, {"apikey": self.api_key, **payload})

        def ping(self) -> dict[str, Any]:
            return self.post("ping", {})

    return ExtendedOpenAlgoAPI


def api_class() -> type:
    """The SDK's ``openalgo.api`` extended with ``ping()`` and ``post()``; imports the SDK on first call."""
    global _api_class
    if _api_class is None:
        with _lock:
            if _api_class is None:
                _api_class = _build_api_class()
    return _api_class


def new_api(*, lean: bool = True, **kwargs: Any) -> Any:
    """A new extended SDK client; ``kwargs`` go to ``openalgo.api`` (api_key, host, timeout, ws_url...).

    With `lean` (the default) its HTTP calls go through app/broker/transport.py instead of the
    SDK's httpx client, unless the environment sets a proxy for the host (only httpx follows it).
    """
    api = api_class()(**kwargs)
    from app.broker.transport import LeanHttpClient, wants_httpx

    if lean and not wants_httpx(str(kwargs.get("host", ""))):
        import httpx

        timeout = kwargs.get("timeout", 120.0)
        api.client.close()
        api.client = LeanHttpClient(timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout))
    return api
