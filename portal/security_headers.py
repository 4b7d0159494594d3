"""Security headers on every answer: a Content-Security-Policy with no inline script or style, no framing,
no MIME sniffing, a same-origin Referer; and ``Cache-Control: no-store`` on the pages of a signed-in user, so a
shared computer's cache or a proxy never keeps them (static files stay cacheable)."""

from __future__ import annotations

from flask import Flask, request
from flask_login import current_user

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response):
    """After every request: the headers above (a view that set its own keeps it), and no-store when signed in."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static" and signed_in():
        response.headers["Cache-Control"] = "no-store"
    return response


def signed_in() -> bool:
    """Whether the request was served for a signed-in user (False when the user cannot be read)."""
    try:
        return bool(current_user.is_authenticated)
    except Exception:  # e.g. the database is gone: the error page is answered anyway
        return False


def init_app(app: Flask) -> None:
    """Register the headers."""
    app.after_request(add_security_headers)
