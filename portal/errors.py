"""One place that turns errors into answers: JSON `{"error": ...}` for the API, an HTML page for people."""

from __future__ import annotations

from flask import Flask, current_app, g, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from markupsafe import escape
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from .domain.errors import DomainError
from .search import SearchUnavailable


def wants_json() -> bool:
    """API paths, and requests that ask for JSON (the page scripts), answer JSON."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def translated(exc: DomainError) -> str:
    """A domain error's message in the UI language (string parameters such as field names too)."""
    params = {key: _(value) if isinstance(value, str) and value else value for key, value in exc.params.items()}
    return _(exc.template, **params)


def discard_failed_transaction() -> None:
    """Roll back the request's session: after a failed flush it refuses every query until then, and the
    error page reads the signed-in user through it."""
    session = g.get("db_session")
    if session is None:
        return
    try:
        session.rollback()
    except Exception:  # the database itself is gone; the page below still answers
        current_app.logger.exception("rollback failed")


def error_response(status: int, message: str):
    """The error as JSON or as the error page, with its status code."""
    if wants_json():
        return jsonify(error=message), status
    try:
        return render_template("error.html", status=status, message=message), status
    except Exception:  # e.g. the database is unreachable and the layout cannot read the user
        current_app.logger.exception("error page failed")
        return f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(message)}</p>", status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        response = make_response(error_response(exc.status, translated(exc)))
        if getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(400, _("The form has expired or did not come from this site. "
                                     "Go back, reload the page and try again."))

    @app.errorhandler(StaleDataError)
    def stale_data(exc: StaleDataError):
        discard_failed_transaction()
        return error_response(409, _("Someone else changed this at the same moment. Nothing was saved; "
                                     "reload the page and try again."))

    @app.errorhandler(SearchUnavailable)
    def search_unavailable(exc: SearchUnavailable):
        app.logger.error("search unavailable: %s", exc)
        return error_response(503, _("Search is not available right now. The service desk has been told."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            403: _("You are not allowed to see this page."),
            404: _("There is no such page."),
            405: _("This address does not accept that kind of request."),
            413: _("What you sent is too large: at most %(size)d MB at once. Shorten the text and send it "
                   "again.", size=max(1, (request.max_content_length or 0) // (1024 * 1024))),
        }
        return error_response(exc.code or 500, messages.get(exc.code, exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        app.logger.exception("unexpected error")
        discard_failed_transaction()
        return error_response(500, _("Something went wrong on our side. Please try again."))
