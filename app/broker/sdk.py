"""The openalgo SDK (2.x) with the calls it lacks."""

from __future__ import annotations

from typing import Any

import openalgo


class ExtendedOpenAlgoAPI(openalgo.api):
    """openalgo.api plus `ping()` (absent in SDK 2.0.5) and a raw `post()` for such calls."""

    def post(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with the SDK's transport; non-200 JSON bodies come back with `code` set."""
        return self._post(endpoint, {"apikey": self.api_key, **payload})

    def ping(self) -> dict[str, Any]:
        return self.post("ping", {})
