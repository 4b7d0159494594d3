"""One structured log line per request (logger ``mesa.requests``), and the request id echoed in X-Request-ID.

Each line is a JSON object: request id, method, route (the URL rule, ``-`` when none matched), endpoint,
status, duration in milliseconds and the signed-in user's id (``-`` for a visitor). Under gunicorn the
lines go to its error log (``portal/gunicorn_conf.py``); elsewhere wherever logging is configured.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, g, request, session

logger = logging.getLogger("mesa.requests")
REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is short and plain (a load balancer's or a client's); anything else could
# forge log lines or fill them, and a new id is made instead.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(header: str | None) -> str:
    """The incoming request id if well formed, else a new random one."""
    if header and WELL_FORMED_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def signed_in_user_id() -> str:
    """The id of the user the request was served for, without a database query: the one Flask-Login loaded,
    else the one the signed session cookie names; ``-`` for a visitor."""
    if "_login_user" in g:
        user = g._login_user
        return str(user.id) if getattr(user, "is_authenticated", False) else "-"
    try:
        user_id = session.get("_user_id")
    except Exception:  # an unreadable session cookie: the request was served as a visitor
        user_id = None
    # The session names "id:token" (portal/auth.py); only the id goes to the log.
    return str(user_id).partition(":")[0] if user_id else "-"


def start_request() -> None:
    """Note when the request began and which id it carries."""
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))


def log_request(response):
    """Echo the request id and write the request's log line."""
    started = g.get("request_started")
    request_id = g.get("request_id") or request_id_from(request.headers.get(REQUEST_ID_HEADER))
    response.headers[REQUEST_ID_HEADER] = request_id
    rule = request.url_rule
    logger.info(json.dumps({
        "request_id": request_id,
        "method": request.method,
        "route": rule.rule if rule is not None else "-",
        "endpoint": request.endpoint or "-",
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
        "user_id": signed_in_user_id(),
    }, separators=(",", ":")))
    return response


def init_app(app: Flask) -> None:
    """Register the hooks; call first so the time covers the other hooks of the request too."""
    app.before_request(start_request)
    app.after_request(log_request)
