"""A short, human name for the device behind a User-Agent string ("Firefox on Linux")."""

from __future__ import annotations

import re

MAX_LENGTH = 64
UNKNOWN = "Unknown device"

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari",
# Android also says "Linux", and iOS browsers also say "Mac OS X".
_BROWSERS = (
    ("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"), ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"),
)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,40}")


def describe_user_agent(user_agent: str | None) -> str:
    """Name the browser and operating system of a User-Agent header.

    Args:
        user_agent: the raw header, possibly empty or hostile (control characters, markup).

    Returns:
        "Browser on System", "Browser", "System", or for other clients their product token
        ("curl", "python-requests"); "Unknown device" when nothing is recognisable. Never
        longer than 64 characters and made only of letters, digits, spaces and ``._-``.
    """
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser and system:
        return f"{browser} on {system}"[:MAX_LENGTH]
    if browser or system:
        return (browser or system or UNKNOWN)[:MAX_LENGTH]
    match = _PRODUCT.match(ua.strip())
    return match.group(0)[:MAX_LENGTH] if match else UNKNOWN
