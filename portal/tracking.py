"""The random browser-session id that ties funnel events together."""

from __future__ import annotations

import secrets

from flask import session


def browser_session_id() -> str:
    """A random id kept in the signed session cookie; no personal data."""
    if "sid" not in session:
        session["sid"] = secrets.token_hex(16)
    return session["sid"]
