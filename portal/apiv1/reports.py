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
from .schemas import BreakdownsOut, GapArgs, GapsOut, ReportArgs, ReportOut, TrendArgs, TrendsOut

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


def _group(key, group) -> dict:
    return {"key": str(key), "created": group.created, "response_met": group.response_share,
            "resolution_met": group.resolution_share, "first_response_hours_median": group.median_first(),
            "first_response_hours_p90": group.p90_first(), "resolution_hours_median": group.median_resolve(),
            "resolution_hours_p90": group.p90_resolve()}


@bp.get("/breakdowns")
@agent_required
@bp.arguments(ReportArgs, location="query")
@bp.response(200, BreakdownsOut)
def breakdowns(args):
    """The reports page's breakdowns of the tickets created in the last 7, 30, 90 or 365 days."""
    from datetime import timedelta

    from ..domain.breakdowns import build_breakdowns
    from ..domain.models import utcnow

    until = utcnow()
    since = until - timedelta(days=args["days"])
    found = build_breakdowns(get_session(), since, until)
    return {"since": since, "until": until, "total": _group("all", found.total),
            "by_priority": [_group(k, g) for k, g in found.by_priority.items()],
            "by_type": [_group(k, g) for k, g in found.by_type.items()],
            "by_category": [_group(k, g) for k, g in found.by_category.items()],
            "escalation_rate": found.escalation_rate, "reopen_rate": found.reopen_rate,
            "backlog_by_age_days": [{"key": band, "count": n} for band, n in found.backlog_by_age],
            "comments": [{"ticket_id": t.id, "rating": r.rating, "comment": r.comment} for r, t in found.comments],
            "minutes_by_category": [{"key": k, "count": int(n)} for k, n in found.minutes_by_category],
            "minutes_by_agent": [{"key": k, "count": int(n)} for k, n in found.minutes_by_agent],
            "deflecting_articles": [{"slug": a.slug, "title": a.title, "count": n} for a, n in found.deflecting],
            "stale_articles": [{"slug": a.slug, "title": a.title, "count": n} for a, n in found.stale],
            "unhelpful_comments": [{"slug": a.slug, "title": a.title, "comment": vote.comment}
                                   for a, vote in found.unhelpful_comments]}


@bp.get("/gaps")
@agent_required
@bp.arguments(GapArgs, location="query")
@bp.response(200, GapsOut)
def content_gaps(args):
    """The FAQ to write: the period's unanswered questions grouped by meaning (see /reports/gaps)."""
    from flask import current_app

    from ..domain import gaps
    from ..domain.models import utcnow
    from ..gap_service import question_vectors

    since, until = gaps.period(args["days"], utcnow())
    questions = gaps.unanswered_questions(get_session(), since, until)
    vectors = question_vectors(current_app)
    groups = gaps.group_questions(questions, vectors.vectors([q.text for q in questions]), vectors.max_distance,
                                  since, until) if questions else []
    return {"questions": len(questions), "asked_once": sum(1 for g in groups if g.size == 1),
            "topics": [{"title": g.title, "size": g.size, "trend": g.trend, "first_half": g.first_half,
                        "second_half": g.second_half, "languages": dict(g.languages), "examples": g.examples,
                        "ticket_ids": g.ticket_ids} for g in groups if g.size >= 2]}
