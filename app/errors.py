"""One place that turns errors into responses: HTML pages for browsers, JSON for JSON clients."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.security.guards import wants_json

logger = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
}

MESSAGES = {
    400: "The request could not be understood.",
    401: "Please sign in to continue.",
    403: "You do not have access to this page.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is larger than allowed.",
    429: "You are going too fast. Wait a moment and try again.",
    500: "An unexpected error happened. It has been logged; please try again.",
}


def _respond(code: int, message: str | None = None):
    message = message or MESSAGES.get(code, "Error")
    if wants_json():
        return jsonify({"status": "error", "message": message, "code": code}), code
    try:
        page = render_template("errors/error.html", code=code, title=TITLES.get(code, "Error"), message=message)
    except Exception:
        # The page itself failed (e.g. the database is down and the layout needs the user):
        # answer in plain text rather than let the server print its own error page.
        logger.exception("Error page for %s could not be rendered", code)
        return Response(f"{TITLES.get(code, 'Error')}: {message}\n", status=code, mimetype="text/plain"), code
    return page, code


def _http_error(exc: HTTPException):
    code = exc.code or 500
    if code == 429:
        return _respond(429, MESSAGES[429] + f" (limit: {exc.description})")
    # Only our own abort(..., description=...) texts are shown; Werkzeug's defaults use ours.
    custom = exc.description if exc.description and exc.description != type(exc).description else None
    return _respond(code, custom)


def _csrf_error(exc: CSRFError):
    logger.warning("CSRF check failed: %s", exc.description)
    return _respond(400, "The form expired or its security token is missing. Reload the page and try again.")


def _unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    logger.exception("Unhandled error")
    try:
        db.session.rollback()
    except Exception:
        logger.warning("Rollback after an unhandled error failed", exc_info=True)
    return _respond(500)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, lambda e: _unexpected(e.original_exception or e))
    app.register_error_handler(Exception, _unexpected)
