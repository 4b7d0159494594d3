"""Flask-Login wiring and the permission helpers views use."""

from __future__ import annotations

import hmac
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_babel import gettext as _, lazy_gettext as _l

from .db import get_session
from .domain.models import User
from .domain.numbers import parse_id
from .session_cookies import signed_in_recently


def viewer() -> User | None:
    """The signed-in user, or None for an anonymous visitor."""
    return current_user if current_user.is_authenticated else None


def role_required(allowed):
    """A view decorator: users for whom ``allowed(user)`` is false get 403, anonymous visitors the login page."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not allowed(current_user):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


agent_required = role_required(lambda user: user.is_agent)
agent_required.__doc__ = "Only agents (L1, L2) and admins."
admin_required = role_required(lambda user: user.is_admin)
admin_required.__doc__ = "Only admins."


def safe_next_url(target: str | None) -> str | None:
    """``target`` if it is a path on this site; off-site or scheme-relative URLs are refused (None)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return None
    return target


def user_for_session(session_id: str, lifetime) -> User | None:
    """The active user a session names ("id:token", User.get_id), if its token is still the user's and the
    sign-in is younger than ``lifetime``; None otherwise (signed out since, new password, expired)."""
    user_key, _, token = str(session_id).partition(":")
    user_id = parse_id(user_key)
    if user_id is None or not token or not signed_in_recently(lifetime):
        return None
    user = get_session().get(User, user_id)
    if user is None or not user.active or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


def init_app(app: Flask) -> None:
    """Set up Flask-Login with the user loader and the login view."""
    manager = LoginManager()
    manager.login_view = "account.login"
    manager.login_message = _l("Please sign in to see this page.")
    manager.login_message_category = "info"
    manager.session_protection = "strong"

    @manager.user_loader
    def load_user(user_id: str):
        return user_for_session(user_id, app.extensions["mesa_session_lifetime"])

    @manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith("/api/"):
            return jsonify(error=_("Sign in first.")), 401
        flash(manager.login_message, manager.login_message_category)
        return redirect(url_for("account.login", next=request.full_path.rstrip("?")))

    manager.init_app(app)
