"""One place that turns refusals and HTTP errors into answers: the contract's
JSON error body under /api, a page elsewhere. Every refusal logs one line; a
database outage (503 `unavailable`) one line now and then, not one per request."""
from __future__ import annotations

from flask import Flask, current_app, g, jsonify, render_template, render_template_string, request, session
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app import MAX_BODY_BYTES
from app.fulfilment.errors import Refusal
from app.outage import is_outage
from app.web import database

_HTTP_REFUSALS = {
    401: lambda e: Refusal("unauthorized"),
    403: lambda e: Refusal("forbidden", needed="another role"),
    404: lambda e: Refusal("not_found", what="resource"),
    405: lambda e: Refusal("method_not_allowed", method=request.method),
    413: lambda e: Refusal("too_large", limit=MAX_BODY_BYTES, details={"limit_bytes": MAX_BODY_BYTES}),
    415: lambda e: Refusal("unsupported_media_type"),
}

_PAGE = """<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ status }}</title><link rel="stylesheet" href="/static/css/app.css"><body class="plain-page">
<h1>{{ status }}</h1><p>{{ message }}</p><p><a href="/">&larr;</a></p></body>"""


def wants_json() -> bool:
    return request.path.startswith("/api/")


def answer(refusal: Refusal, status: int | None = None):
    status = status or refusal.status
    current_app.logger.info("refused %s %s -> %s %s: %s", request.method, request.path, status,
                            refusal.code, refusal.message("en")[:300])
    if wants_json():
        retry = refusal.details.get("retry_after_seconds")
        return jsonify(refusal.body()), status, ({"Retry-After": str(retry)} if retry else {})
    return render_template_string(_PAGE, status=status, message=refusal.message(_language())), status


def _language() -> str:
    # Before the worker was read from the database (it may be down), the
    # language chosen at login is still in the session cookie.
    return getattr(g, "language", None) or session.get("language") or "zh"


def unavailable(error: Exception):
    """The database is down or did not answer in time: 503 with Retry-After.
    The transaction did not commit (should the connection drop during the
    commit itself, the retry is recognised by its scan id or external_id).
    The API gets the contract's body; a screen, a page that tries again."""
    seconds = current_app.config["LUYUE"].unavailable_retry_after_seconds
    database().outages.report(current_app.logger, f"{request.method} {request.path}", error)
    refusal = Refusal("unavailable", seconds=seconds, details={"retry_after_seconds": seconds})
    headers = {"Retry-After": str(seconds)}
    if wants_json():
        return jsonify(refusal.body()), 503, headers
    g.language = _language()
    g.setdefault("user", None)
    return render_template("unavailable.html", refusal=refusal, seconds=seconds,
                           reload=request.method == "GET"), 503, headers


def register(app: Flask) -> None:
    @app.errorhandler(Refusal)
    def _refusal(e: Refusal):
        return answer(e)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        make = _HTTP_REFUSALS.get(e.code or 500)
        if make is None:
            if wants_json():
                current_app.logger.info("refused %s %s -> %s", request.method, request.path, e.code)
                return jsonify({"error": {"code": "http_%s" % e.code, "message": e.description,
                                          "details": {}}}), e.code
            return e
        return answer(make(e), e.code)

    @app.errorhandler(SQLAlchemyError)
    def _database(e: SQLAlchemyError):
        return unavailable(e) if is_outage(e) else _crash(e)

    @app.errorhandler(Exception)
    def _crash(e: Exception):
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        body = {"error": {"code": "internal_error", "message": "Something went wrong on our side; "
                          "nothing was written. Retry, and tell the operator if it persists.", "details": {}}}
        if wants_json():
            return jsonify(body), 500
        return render_template_string(_PAGE, status=500, message=body["error"]["message"]), 500
