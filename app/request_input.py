"""Untrusted request input that is not a form: query arguments and JSON bodies.

Bad input gets a 400 with a message, never a 500: integers are bounded before they reach
a query (a 40-digit page overflows the database's integer), text arguments may not carry
control characters (PostgreSQL refuses NUL), and a JSON body must be an object nested at
most MAX_JSON_DEPTH levels (Python's parser recurses; 5,000 levels raise RecursionError).
"""

from __future__ import annotations

import re
from array import array
from datetime import date, datetime
from itertools import accumulate

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

from app.text_safety import has_control_characters

MAX_JSON_DEPTH = 32
# Longer digit strings are refused before int() (Python refuses over 4,300 digits anyway).
_MAX_INT_DIGITS = 18
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A JSON string: its brackets do not count towards the nesting depth. Possessive quantifiers and an
# optional closing quote make every match attempt succeed in one pass: an unclosed string (a body of
# `"\"\"\"...`) must not send the engine back over the rest of the body from every quote (quadratic).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
# Openers become +1 and closers -1 when the bytes are read as signed chars.
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def parse_bounded_int(raw: str | None, *, minimum: int, maximum: int) -> int | None:
    """The integer written in `raw` if it lies within [minimum, maximum], otherwise None.

    Only ASCII digits with an optional leading minus sign count; surrounding spaces are ignored.
    """
    if raw is None:
        return None
    text = raw.strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > _MAX_INT_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def int_arg(name: str, default: int, *, minimum: int, maximum: int) -> int:
    """Integer query argument `name`: `default` when absent or empty, 400 when malformed or out of bounds."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = parse_bounded_int(raw, minimum=minimum, maximum=maximum)
    if value is None:
        abort(400, description=f"{name} must be a whole number from {minimum} to {maximum}.")
    return value


def text_arg(name: str, *, max_length: int = 200) -> str | None:
    """Text query argument `name` (None when absent or empty); 400 for control characters or excess length."""
    raw = request.args.get(name)
    if not raw:
        return None
    if has_control_characters(raw) or len(raw) > max_length:
        abort(400, description=f"{name} must be at most {max_length} characters, without control characters.")
    return raw


def day_arg(raw: str | None) -> date | None:
    """A YYYY-MM-DD query value as a date (None when empty); anything else answers 400."""
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        abort(400, description=f"Dates must look like 2026-01-31, got {raw[:20]!r}.")


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text, counted without parsing it (no recursion).

    Brackets inside strings do not count. An invalid text gives a number too; the parser
    refuses it afterwards.
    """
    steps = _JSON_STRING.sub(b"", raw).translate(_DEPTH_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0)


def check_json_body() -> None:
    """before_request hook: a JSON body to any route is an object nested at most MAX_JSON_DEPTH levels."""
    if request.method not in _UNSAFE_METHODS or not request.is_json:
        return
    raw = request.get_data(cache=True)
    if not raw.strip():
        return  # nothing to parse; a route that needs a body says so
    if json_depth(raw) > MAX_JSON_DEPTH:
        abort(400, description=f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
    body = request.get_json(silent=True)
    if body is None and raw.strip() != b"null":
        abort(400, description="The request body is not valid JSON.")
    if not isinstance(body, dict):
        abort(400, description="The JSON body must be an object.")


class BoundedIntegerConverter(IntegerConverter):
    """`<int:id>` that matches only ids a database column can hold (1 .. 2**63 - 1).

    A 40-digit id in a URL is a 404 like any other unknown id; unbounded, SQLite raises
    OverflowError on it and the request becomes a 500.
    """

    def __init__(self, map, *args, **kwargs):  # werkzeug passes the map and the rule arguments
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    """Before any blueprint is registered: routes compile their converters when added."""
    app.url_map.converters["int"] = BoundedIntegerConverter


def init_app(app: Flask) -> None:
    app.before_request(check_json_body)
