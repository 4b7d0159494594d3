"""`GET /healthz` for a load balancer, as JSON: 200 when the process can serve, 503 when it cannot.

Unauthenticated and cheap (a few indexed queries, no session, no template); it says how things are, never
where (no addresses, paths, names or error texts). The checks are a registry, ``app.extensions["mesa_health"]``:
callables that return ``(name, details, ok)``; one that raises counts as failed. A failed check makes the
answer 503, unless the check is marked ``critical = False``: then the status is "degraded" with 200 (search
can be down while people still read articles and create tickets).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .domain.models import utcnow

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def database_check():
    """The database answers ``SELECT 1``, and how fast."""
    started = time.perf_counter()
    try:
        with current_app.extensions["mesa_engine"].connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", exc)
        return "database", {"reachable": False}, False
    return "database", {"reachable": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}, True


def outbox_check():
    """The e-mail backlog: pending and failed messages, the age of the oldest pending one, and whether this
    deployment sends at all (without MESA_SMTP_HOST messages only wait in the outbox). Failed the check only
    when it cannot be read; a backlog is for admins to see, not a reason to take the process out of service."""
    from .domain.outbox import backlog

    try:
        with current_app.extensions["mesa_engine"].connect() as connection:
            waiting = backlog(connection, utcnow())
    except SQLAlchemyError as exc:
        log.error("health check: outbox unreadable: %s", exc)
        return "outbox", {"readable": False}, False
    return "outbox", {"pending": waiting.pending, "failed": waiting.failed,
                      "oldest_pending_seconds": waiting.oldest_pending_seconds,
                      "sending": bool(current_app.config["MESA_SMTP_HOST"])}, True


def search_index_check():
    """The search index: built, in this process's memory, the database's last change and how many changes
    this process is behind (``SearchService.health``). Not critical: people read articles and create
    tickets without it."""
    from .search import get_search

    return "search_index", *get_search().health()


search_index_check.critical = False


DEFAULT_CHECKS = (database_check, outbox_check, search_index_check)


def run_checks(checks) -> tuple[dict, str]:
    """Each check's details (with its ``ok``), and the status: "ok", "degraded" (a non-critical check failed)
    or "unavailable" (a critical one did)."""
    results, status = {}, "ok"
    for check in checks:
        try:
            name, details, ok = check()
        except Exception:
            log.exception("health check %s failed", getattr(check, "__name__", check))
            name, details, ok = getattr(check, "__name__", "check").removesuffix("_check"), {}, False
        results[name] = {**details, "ok": bool(ok)}
        if not ok:
            status = "unavailable" if getattr(check, "critical", True) or status == "unavailable" else "degraded"
    return results, status


@bp.get("/healthz")
def healthz():
    """Whether this process can serve: JSON with every check; 200, or 503 when a critical check failed."""
    checks, status = run_checks(current_app.extensions["mesa_health"])
    response = jsonify(status=status, checks=checks)
    response.status_code = 503 if status == "unavailable" else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Register the default checks and the route."""
    app.extensions["mesa_health"] = list(DEFAULT_CHECKS)
    app.register_blueprint(bp)
