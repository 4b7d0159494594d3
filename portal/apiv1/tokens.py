"""Who calls the API: a bearer token (``Authorization: Bearer mesa_...``) or the browser's session.

A token request is exempt from CSRF (no browser sends it by itself) and a read token may only read; a
session request that changes data needs the CSRF token in the ``X-CSRFToken`` header, as the pages' forms do.
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user

from ..db import get_session
from ..domain import api_tokens

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_secret() -> str | None:
    """The token of an ``Authorization: Bearer`` header; "" for another kind of Authorization; None without."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def refuse(status: int, message: str):
    """An API refusal in Mesa's error shape; 401s say how to authenticate."""
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mesa"'
    return response


def authenticate_api_request():
    """Before every API view: sign the token's owner in for this request only (nothing is written to the
    session), enforce the token's scope, and check CSRF on session requests that change data."""
    secret = bearer_secret()
    if secret is not None:
        session = get_session()
        token = api_tokens.find_token(session, secret)
        if token is None:
            return refuse(401, _("The API token is not valid or was revoked."))
        if token.last_used_at is not None and session.is_modified(token):
            session.commit()  # the last-used time only: the token's owner sees when it was used
        g._login_user = token.user  # Flask-Login's current user for this request
        g.api_token = token
        wait = current_app.extensions["mesa_api_rate_limit"].retry_after(token.id)
        if wait is not None:
            response = refuse(429, _("Too many requests with this token: at most %(limit)d a minute. Try again in "
                                     "%(seconds)d seconds.", limit=current_app.config["MESA_API_RATE_LIMIT"],
                                     seconds=wait))
            response.headers["Retry-After"] = str(wait)
            return response
        if request.method not in SAFE_METHODS and token.scope != "write":
            return refuse(403, _("This token can only read. Create a token with write access to change data."))
        return None
    g.api_token = None
    if request.method not in SAFE_METHODS and current_user.is_authenticated:
        current_app.extensions["csrf"].protect()  # raises CSRFError: answered 400 by portal/errors.py
    return None


def auth_kind() -> tuple[str | None, str | None]:
    """How the current request is authenticated ("token" / "session" / None) and with what scope."""
    token = g.get("api_token")
    if token is not None:
        return "token", token.scope
    if current_user.is_authenticated:
        return "session", "write"
    return None, None
