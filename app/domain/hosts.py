"""Where a URL sends its requests, and whether the administrator's allow-list permits it.

Pure rules (no Flask, no database, no network). Two uses:

- **Key custody:** a stored API key may only go to the destination it was entered for.
  `same_destination(a, b)` says whether two URLs reach the same scheme, host, port and path
  once cosmetic differences (letter case, a trailing slash, a trailing dot, an explicit
  default port) are removed. Different spellings of one machine (``localhost`` and
  ``127.0.0.1``) count as different here: re-entering a key is cheap, guessing is not.
- **Outbound allow-list:** entries are ``host`` or ``host:port`` (IPv6 in brackets when a port
  follows: ``[::1]:5100``). A bare host allows ports 80 and 443 only (the default ports of
  http/ws and https/wss), never every port of the host; ``host:port`` allows that one port.
  Hosts match exactly after normalisation, with one deliberate alias: ``localhost``,
  ``127.0.0.1`` and ``::1`` are the same loopback host, so an entry written one way allows a
  URL written another way. Other loopback addresses (127.0.0.2, 0.0.0.0) are not aliases;
  they are matched literally, so they are refused unless listed themselves.

Host names are checked strictly (letters, digits, ``-`` and ``_`` in labels of at most 63
characters), and a name whose last label is a number (``127.1``, ``2130706433``,
``0x7f000001``) is refused unless it is a dotted-quad IPv4 address: resolvers read such
names as IP addresses, so they would otherwise slip past an exact match.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
BARE_HOST_PORTS = frozenset({80, 443})
LOOPBACK = "loopback"  # the alias key shared by localhost, 127.0.0.1 and ::1
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL_RE = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


class HostRuleError(ValueError):
    """A host, URL or allow-list entry is not acceptable; `message` is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Destination:
    """Where a URL's requests go: scheme, canonical host, effective port and path."""

    scheme: str
    host: str  # canonical: lower case, no trailing dot, IPv6 compressed and without brackets
    port: int
    path: str

    @property
    def address(self) -> str:
        """``host:port`` as an allow-list entry would name it."""
        return f"{_bracketed(self.host)}:{self.port}"


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a canonical host and an optional port (None = ports 80 and 443)."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        host = _bracketed(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def allows(self, destination: Destination) -> bool:
        if host_identity(self.host) != host_identity(destination.host):
            return False
        if self.port is None:
            return destination.port in BARE_HOST_PORTS
        return destination.port == self.port


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def canonical_host(raw: str) -> str:
    """The canonical spelling of a host name or IP literal.

    Args:
        raw: a host as it appears in a URL (IPv6 without brackets) or in an entry.

    Returns:
        Lower case, without a trailing dot; IPv4 in dotted-quad form; IPv6 compressed, and an
        IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as its IPv4 address.

    Raises:
        HostRuleError: empty, a scope id (``%eth0``), characters outside host names, a label
            that is empty or longer than 63 characters, or a number that is not dotted-quad IPv4.
    """
    host = (raw or "").strip().lower()
    if not host:
        raise HostRuleError("Enter a host name or IP address.")
    if "%" in host:
        raise HostRuleError("IPv6 scope ids (%…) are not supported.")
    if host.endswith("."):
        host = host[:-1]  # the absolute form of the same name (or the same address)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else address.compressed
    if address is not None:
        return str(address)
    if ":" in host:
        raise HostRuleError("Not a valid IPv6 address.")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise HostRuleError("Not a valid host name.") from exc
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise HostRuleError("Not a valid host name.")
    if _NUMERIC_LABEL_RE.match(labels[-1]):
        raise HostRuleError("Not a valid IPv4 address: write it as four numbers, e.g. 127.0.0.1.")
    return host


def host_identity(host: str) -> str:
    """The key hosts are compared by in the allow-list: loopback spellings share one key."""
    return LOOPBACK if host in _LOOPBACK_NAMES else host


def destination(url: str) -> Destination:
    """Parse a URL (http, https, ws or wss) into where its requests go.

    Raises:
        HostRuleError: another scheme, no host, user info, a bad host or a bad port.
    """
    text = (url or "").strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise HostRuleError("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 address
        raise HostRuleError("The URL is not valid.") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise HostRuleError("The URL must start with http://, https://, ws:// or wss://.")
    if "@" in parts.netloc:
        raise HostRuleError("The URL must not contain a user name or password.")
    if not parts.hostname:
        raise HostRuleError("The URL has no host name.")
    try:
        port = parts.port
    except ValueError as exc:
        raise HostRuleError("The port in the URL is not valid.") from exc
    if port == 0:
        raise HostRuleError("The port in the URL is not valid.")
    try:
        host = canonical_host(parts.hostname)
    except HostRuleError as exc:
        raise HostRuleError(f"The host in the URL is not valid. {exc.message}") from exc
    return Destination(scheme, host, port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


def canonical_url(url: str) -> str:
    """`url` rebuilt from its destination: the form AlgoMirror stores (default port omitted,
    no trailing slash, no query or fragment). Raises HostRuleError like `destination`."""
    dest = destination(url)
    host = _bracketed(dest.host)
    netloc = host if dest.port == DEFAULT_PORTS[dest.scheme] else f"{host}:{dest.port}"
    return f"{dest.scheme}://{netloc}{dest.path}"


def same_destination(a: str | None, b: str | None) -> bool:
    """True when both URLs reach the same scheme, host, port and path (see the module notes).
    A URL that cannot be parsed is never the same as anything."""
    if not a or not b:
        return False
    try:
        return destination(a) == destination(b)
    except HostRuleError:
        return False


def parse_entry(raw: str) -> AllowEntry:
    """Parse one allow-list entry: ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6.

    Raises:
        HostRuleError: a scheme, path, user info or whitespace, a bad host, or a port outside 1–65535.
    """
    text = (raw or "").strip()
    if not text:
        raise HostRuleError("Empty entry.")
    if "://" in text or any(c in text for c in "/@?#\\") or any(c.isspace() or ord(c) < 32 for c in text):
        raise HostRuleError(f"{text!r}: write host or host:port, without http:// or a path.")
    port_text: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise HostRuleError(f"{text!r}: a '[' without its ']'.")
        host_text, rest = text[1:close], text[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise HostRuleError(f"{text!r}: only :port may follow ']'.")
            port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host_text)
        except ValueError as exc:
            raise HostRuleError(f"{text!r}: brackets are only for IPv6 addresses.") from exc
    elif text.count(":") >= 2:
        host_text = text  # a bare IPv6 address; a port needs brackets: [::1]:5100
    elif ":" in text:
        host_text, port_text = text.split(":", 1)
    else:
        host_text = text
    try:
        host = canonical_host(host_text)
    except HostRuleError as exc:
        raise HostRuleError(f"{text!r}: {exc.message[0].lower()}{exc.message[1:]}") from exc
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise HostRuleError(f"{text!r}: the port must be a number from 1 to 65535.")
        port = int(port_text)
    return AllowEntry(host, port)


def split_entries(text: str) -> list[str]:
    """The raw entries of an allow-list as typed: separated by commas or new lines."""
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]


def parse_entries(text: str) -> tuple[list[AllowEntry], list[str]]:
    """Parse a whole list; returns (valid entries without duplicates, in input order; one
    message per invalid entry)."""
    entries: list[AllowEntry] = []
    problems: list[str] = []
    for raw in split_entries(text):
        try:
            entry = parse_entry(raw)
        except HostRuleError as exc:
            problems.append(exc.message)
            continue
        if entry not in entries:
            entries.append(entry)
    return entries, problems


def is_allowed(dest: Destination, entries: Iterable[AllowEntry]) -> bool:
    """True when an entry allows the destination's host and port (the scheme does not matter)."""
    return any(entry.allows(dest) for entry in entries)
