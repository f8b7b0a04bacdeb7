"""Errors raised by the pure domain rules.

They derive from ValueError: every one of them means "these inputs have no answer", which a
service turns into a field error or a 4xx naming the leg or field (never a 500). The
domain imports nothing from the app, so these are not AlgoMirrorError subclasses; the
service layer wraps them where it needs to.
"""

from __future__ import annotations


class DomainError(ValueError):
    """Base class of the domain's own errors."""


class InvalidExpiry(DomainError):
    """An expiry date string is not in any of OpenAlgo's formats."""


class ExpiryUnavailable(DomainError):
    """The broker's expiry list has no expiry for the requested choice."""


class StrikeUnavailable(DomainError):
    """No strike satisfies the requested selection (off the list, no quotes, ...)."""


class InvalidSymbol(DomainError):
    """A symbol cannot be built from, or parsed into, OpenAlgo's format."""


class SizingError(DomainError):
    """Sizing inputs are inconsistent (e.g. a freeze quantity below the lot size)."""
