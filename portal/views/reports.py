"""The reports page: deflection, content gaps, articles, SLA compliance, satisfaction."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..auth import agent_required
from ..db import get_session
from ..domain.numbers import parse_int
from ..domain.breakdowns import STALE_DAYS, build_breakdowns
from ..domain.reports import build_report

bp = Blueprint("reports", __name__, url_prefix="/reports")
PERIODS = (7, 30, 90, 365)


@bp.get("/")
@agent_required
def overview():
    """The numbers for the last 7, 30 (default), 90 or 365 days."""
    days = parse_int(request.args.get("days"))
    days = days if days in PERIODS else 30
    session = get_session()
    report = build_report(session, days)
    return render_template("reports/overview.html", report=report, days=days, periods=PERIODS,
                           breakdowns=build_breakdowns(session, report.since, report.until), stale_days=STALE_DAYS)
