"""Control characters in untrusted text: detect them (input), escape them (logs), replace NUL (storage).

Pure functions, no Flask. "Control character" means C0 (U+0000-U+001F), DEL, C1
(U+0080-U+009F) and the Unicode line and paragraph separators, which some viewers
also treat as line breaks.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"
_SEPARATORS = (0x2028, 0x2029)
_CONTROL_CODES = (*range(32), *range(127, 160), *_SEPARATORS)
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# str.translate table: each control character becomes a visible escape such as \n or \x1b.
_ESCAPES = {
    code: _NAMED_ESCAPES.get(chr(code), f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
    for code in _CONTROL_CODES
}


def is_control_character(char: str) -> bool:
    code = ord(char)
    return code < 32 or 127 <= code < 160 or code in _SEPARATORS


def has_control_characters(value: str, *, allow_newlines: bool = False) -> bool:
    """Whether `value` holds a control character.

    Args:
        value: the text to check.
        allow_newlines: accept tab, line feed and carriage return (multi-line text areas).
    """
    return any(is_control_character(c) and not (allow_newlines and c in "\t\n\r") for c in value)


def escape_control_characters(value: str) -> str:
    """`value` with every control character written as an escape (\\n, \\r, \\t, \\x1b, \\u2028), one line."""
    return value.translate(_ESCAPES)


def replace_nul(value: Any) -> Any:
    """`value` with NUL replaced by U+FFFD in every string, at any depth of dicts, lists and tuples.

    PostgreSQL refuses NUL in text and JSON columns; a record of bad input must still be stored.
    """
    if isinstance(value, str):
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {replace_nul(k): replace_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_nul(v) for v in value]
    return value
