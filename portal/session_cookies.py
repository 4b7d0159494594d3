"""How the session cookie is set and how long a sign-in lasts (MESA_SECURE_COOKIES, MESA_SESSION_HOURS).

The cookie is HttpOnly and SameSite=Lax always, and Secure (sent over HTTPS only) when MESA_SECURE_COOKIES says
so: `auto` turns it on in production or when MESA_PORTAL_URL is https. A sign-in ends MESA_SESSION_HOURS after
it began, whatever happens in between (the time is kept in the signed cookie); signing out ends it on the
server too (portal/auth.py checks the user's session token).
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, session
from flask_login import user_logged_in, user_logged_out

SIGNED_IN_AT = "mesa_signed_in_at"


def secure_cookies(config: dict) -> bool:
    """Whether cookies carry the Secure flag under these settings."""
    choice = config["MESA_SECURE_COOKIES"]
    if choice == "auto":
        production = config["MESA_ENV"] == "production" and not config.get("TESTING")
        return production or str(config["MESA_PORTAL_URL"]).lower().startswith("https://")
    return choice == "true"


def session_lifetime(config: dict) -> timedelta:
    """How long a sign-in lasts; RuntimeError when MESA_SESSION_HOURS is below 1."""
    hours = config["MESA_SESSION_HOURS"]
    if hours < 1:
        raise RuntimeError(f"MESA_SESSION_HOURS={hours} must be at least 1")
    return timedelta(hours=hours)


def signed_in_recently(lifetime: timedelta) -> bool:
    """Whether the request's session began (by signing in) less than ``lifetime`` ago."""
    started = session.get(SIGNED_IN_AT)
    if not isinstance(started, int) or isinstance(started, bool):
        return False
    return 0 <= time.time() - started < lifetime.total_seconds()


def stamp_sign_in(app, user, **extra) -> None:
    """On signing in: note the time in the session."""
    session[SIGNED_IN_AT] = int(time.time())


def clear_sign_in(app, user, **extra) -> None:
    """On signing out: forget the time."""
    session.pop(SIGNED_IN_AT, None)


def init_app(app: Flask) -> None:
    """Set the cookie flags (explicitly: Flask's defaults already hold these keys) and the sign-in stamps."""
    secure = secure_cookies(app.config)
    lifetime = session_lifetime(app.config)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_DURATION=lifetime,
    )
    app.extensions["mesa_session_lifetime"] = lifetime
    user_logged_in.connect(stamp_sign_in, app)
    user_logged_out.connect(clear_sign_in, app)
