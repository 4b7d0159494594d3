"""`/api/v1/reports`: the reports page's numbers, for agents."""

from __future__ import annotations

from ..auth import agent_required
from ..db import get_session
from ..domain.reports import build_report
from .parsing import Blueprint
from ..domain.models import Team
from ..domain.errors import N_, NotFound
from ..domain.trends import TrendFilters, build_trends, filter_agents, grain_for
from ..trend_text import CHART_TITLES, DEFINITIONS, SERIES_LABELS
from .schemas import ReportArgs, ReportOut, TrendArgs, TrendsOut

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
        "since", "until", "funnel", "deflection_rate", "tickets_created", "tickets_resolved", "response_met",
        "resolution_met", "open_breached", "csat_average", "csat_satisfied", "csat_responses")},
        "unanswered_questions": [{"query": q, "count": n} for q, n in report.unanswered_questions],
        "ticket_questions": [{"query": q, "count": n} for q, n in report.ticket_questions],
        "top_articles": [{"slug": a.slug, "title": a.title, "views": n} for a, n in report.top_articles],
        "unhelpful_articles": [{"slug": a.slug, "title": a.title, "votes": total, "not_helpful": no}
                               for a, total, no in report.unhelpful_articles]}


@bp.get("/trends")
@agent_required
@bp.arguments(TrendArgs, location="query")
@bp.response(200, TrendsOut)
def trends(args):
    """Every figure of the trends page per day or week, with how it is computed (ticket filters optional)."""
    session = get_session()
    if args.get("team") is not None and session.get(Team, args["team"]) is None:
        raise NotFound(N_("There is no team %(id)s."), id=args["team"])
    if args.get("agent") is not None and args["agent"] not in {a.id for a in filter_agents(session)}:
        raise NotFound(N_("There is no agent %(id)s."), id=args["agent"])
    filters = TrendFilters(category=args.get("category"), ticket_type=args.get("type"),
                           priority=args.get("priority"), lang=args.get("lang"), team_id=args.get("team"),
                           agent_id=args.get("agent"))
    charts = build_trends(session, args["days"], args["by"], filters)
    return {"days": args["days"], "by": grain_for(args["days"], args["by"]),
            "charts": [{"key": c.key, "title": str(CHART_TITLES[c.key]), "definition": str(DEFINITIONS[c.key]),
                        "unit": c.unit, "filtered": c.filtered, "periods": [b.date() for b in c.buckets],
                        "series": [{"key": s.key, "label": str(SERIES_LABELS[s.key]), "values": s.values,
                                    "drawn": s.drawn} for s in c.series]} for c in charts]}
