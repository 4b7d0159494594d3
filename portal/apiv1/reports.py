"""`/api/v1/reports`: the reports page's numbers, for agents."""

from __future__ import annotations

from ..auth import agent_required
from ..db import get_session
from ..domain.reports import build_report
from .parsing import Blueprint
from .schemas import ReportArgs, ReportOut

bp = Blueprint("api_v1_reports", __name__, url_prefix="/api/v1/reports",
               description="Deflection, content gaps, articles, SLA compliance, satisfaction (agents).")


@bp.get("")
@agent_required
@bp.arguments(ReportArgs, location="query")
@bp.response(200, ReportOut)
def report(args):
    """The numbers of the last 7, 30 (default), 90 or 365 days."""
    report = build_report(get_session(), args["days"])
    return {**{name: getattr(report, name) for name in (
        "since", "until", "funnel", "deflection_rate", "email_funnel", "email_deflection_rate", "tickets_created", "tickets_resolved", "response_met",
        "resolution_met", "open_breached", "csat_average", "csat_satisfied", "csat_responses")},
        "unanswered_questions": [{"query": q, "count": n} for q, n in report.unanswered_questions],
        "ticket_questions": [{"query": q, "count": n} for q, n in report.ticket_questions],
        "top_articles": [{"slug": a.slug, "title": a.title, "views": n} for a, n in report.top_articles],
        "unhelpful_articles": [{"slug": a.slug, "title": a.title, "votes": total, "not_helpful": no}
                               for a, total, no in report.unhelpful_articles]}
