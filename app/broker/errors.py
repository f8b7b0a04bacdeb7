"""Broker errors, named by what the caller must do (STYLE.md)."""

from __future__ import annotations

from app.exceptions import AlgoMirrorError


class BrokerError(AlgoMirrorError):
    """Something went wrong talking to an OpenAlgo server."""

    user_message = "The OpenAlgo server returned an error."

    def __init__(self, message: str | None = None, *, status_code: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.endpoint = endpoint


class BrokerAuthError(BrokerError):
    """403/401: the API key is wrong, or the broker session in OpenAlgo expired. Ask the user to log in."""

    user_message = "The API key was refused: check the key, or log the broker in again in OpenAlgo."


class RateLimited(BrokerError):
    """429: too many requests. Back off and retry later."""

    user_message = "The OpenAlgo server is rate-limiting requests; try again shortly."


class BrokerUnavailable(BrokerError):
    """Connection refused, DNS failure, 5xx, or a read that timed out: retry later. Nothing was changed."""

    user_message = "The OpenAlgo server could not be reached."


class OutcomeUnknown(BrokerError):
    """An order request may have reached the broker but no answer came back (timeout, cut connection,
    or a server error after the request was received). Never resend blindly: reconcile against the
    order book and position book first."""

    user_message = "The order's outcome is unknown; it is being checked against the broker's order book."


class OrderRejected(BrokerError):
    """The broker or OpenAlgo refused the order; the message says why. Report it; do not retry as is."""

    user_message = "The order was rejected."


class BrokerRequestError(BrokerError):
    """A read was refused as invalid (unknown symbol, bad parameter). Fix the request."""

    user_message = "The request was refused by the OpenAlgo server."


class NotOpenAlgo(BrokerError):
    """The host answered, but not like an OpenAlgo server (an HTML page, or unexpected JSON)."""

    user_message = "This host does not look like an OpenAlgo server (unexpected response)."


class HostNotAllowed(BrokerError):
    """The account's host or WebSocket URL is not on the administrator's allow-list (any more).
    Nothing was sent; the user must edit the account or an admin must allow the host."""

    user_message = "This account's host is not on the administrator's list of allowed hosts; nothing was sent."
