"""The numbers a service desk runs on: deflection, content gaps, article usefulness, SLA compliance, CSAT."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

from .models import OPEN_STATUSES, Article, ArticleFeedback, PortalEvent, SurveyResponse, Ticket, utcnow
from .sla import target_outcome
from .tickets import breached_clause

FUNNEL_STEPS = ("search", "suggestion_shown", "article_opened", "solved", "ticket_created")


@dataclass
class Report:
    """Everything on the reports page for one period."""

    since: datetime
    until: datetime
    funnel: dict[str, int] = field(default_factory=dict)  # the portal's steps
    deflection_rate: float | None = None
    # By e-mail, counted apart: articles the acknowledgements offered, tickets they offered articles for, and
    # tickets closed by "This solved my problem" in the mail; the rate is the share of those tickets.
    email_funnel: dict[str, int] = field(default_factory=dict)
    email_deflection_rate: float | None = None
    unanswered_questions: list[tuple[str, int]] = field(default_factory=list)
    ticket_questions: list[tuple[str, int]] = field(default_factory=list)
    top_articles: list[tuple[Article, int]] = field(default_factory=list)
    unhelpful_articles: list[tuple[Article, int, int]] = field(default_factory=list)
    tickets_created: int = 0
    tickets_resolved: int = 0
    response_met: float | None = None  # of the tickets created in the period whose first response is decided
    response_counted: int = 0  # answered, or past the target without an answer (missed)
    response_pending: int = 0  # open, unanswered and still within the target: not counted yet
    resolution_met: float | None = None
    open_breached: int = 0
    csat_average: float | None = None
    csat_satisfied: float | None = None
    csat_responses: int = 0


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def first_response_compliance(session: Session, since: datetime, until: datetime) -> tuple[int, int, int]:
    """(met, counted, pending) over every ticket created in the period, whatever its state now: a ticket
    answered by its target is met; one answered late, or unanswered past its target, is missed; one
    unanswered and still within its target is pending and not counted yet (nor is a ticket closed without
    any response before its target passed)."""
    rows = session.execute(select(Ticket.first_response_at, Ticket.response_due_at, Ticket.status,
                                  Ticket.closed_at).where(Ticket.created_at >= since, Ticket.created_at <= until))
    met = counted = pending = 0
    for responded_at, due_at, status, closed_at in rows:
        outcome = target_outcome(due_at, responded_at, closed_at, until)
        if outcome is not None:
            counted += 1
            met += outcome == "met"
        elif status in OPEN_STATUSES and due_at > until:
            pending += 1
    return met, counted, pending


def build_report(session: Session, days: int = 30, now: datetime | None = None, limit: int = 10) -> Report:
    """The report for the last ``days`` days."""
    until = now or utcnow()
    since = until - timedelta(days=days)
    report = Report(since=since, until=until)
    in_period = (PortalEvent.created_at >= since) & (PortalEvent.created_at <= until)

    counts = {(kind, channel): n for kind, channel, n in session.execute(
        select(PortalEvent.kind, PortalEvent.channel, func.count()).where(in_period)
        .group_by(PortalEvent.kind, PortalEvent.channel)).all()}
    report.funnel = {step: counts.get((step, "portal"), 0) for step in FUNNEL_STEPS}
    # Deflection: of the people who asked for help, the share whom an article helped without a ticket.
    solved, tickets = report.funnel["solved"], report.funnel["ticket_created"]
    report.deflection_rate = _share(solved, solved + tickets)
    offered_tickets = session.scalar(select(func.count(func.distinct(PortalEvent.ticket_id))).where(
        in_period, PortalEvent.kind == "suggestion_shown", PortalEvent.channel == "email")) or 0
    report.email_funnel = {"suggestion_shown": counts.get(("suggestion_shown", "email"), 0),
                           "tickets_offered": offered_tickets, "solved": counts.get(("solved", "email"), 0)}
    report.email_deflection_rate = _share(report.email_funnel["solved"], offered_tickets)

    # Content gaps: questions (searches and ask-for-help requests) whose best result was below the answer
    # threshold, or that found nothing at all.
    report.unanswered_questions = [tuple(row) for row in session.execute(
        select(PortalEvent.query, func.count().label("n")).where(
            in_period, PortalEvent.kind == "search", PortalEvent.query != "",
            (PortalEvent.answered.is_(False)) | (PortalEvent.answered.is_(None) & (PortalEvent.results == 0)))
        .group_by(PortalEvent.query).order_by(func.count().desc(), PortalEvent.query).limit(limit))]
    report.ticket_questions = [tuple(row) for row in session.execute(
        select(PortalEvent.query, func.count().label("n")).where(in_period, PortalEvent.kind == "ticket_created",
                                                                PortalEvent.query != "")
        .group_by(PortalEvent.query).order_by(func.count().desc(), PortalEvent.query).limit(limit))]

    views = (select(PortalEvent.article_slug, func.count().label("n"))
             .where(in_period, PortalEvent.kind == "article_opened").group_by(PortalEvent.article_slug)
             .order_by(func.count().desc()).limit(limit))
    top = session.execute(views).all()
    articles = {a.slug: a for a in session.scalars(select(Article).where(Article.slug.in_([s for s, _ in top])))}
    report.top_articles = [(articles[slug], n) for slug, n in top if slug in articles]

    votes = session.execute(
        select(ArticleFeedback.article_id, func.count(), func.sum(func.cast(ArticleFeedback.helpful, Integer())))
        .where(ArticleFeedback.created_at >= since).group_by(ArticleFeedback.article_id)).all()
    unhelpful = sorted(((article_id, total, total - int(helpful or 0)) for article_id, total, helpful in votes
                        if total - int(helpful or 0) > 0), key=lambda row: (-(row[2] / row[1]), -row[1]))[:limit]
    by_id = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_([r[0] for r in unhelpful])))}
    report.unhelpful_articles = [(by_id[a], total, no) for a, total, no in unhelpful if a in by_id]

    report.tickets_created = session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.created_at >= since, Ticket.created_at <= until)) or 0
    resolved = list(session.execute(select(Ticket.first_response_at, Ticket.response_due_at, Ticket.resolved_at,
                                           Ticket.resolution_due_at)
                                    .where(Ticket.resolved_at >= since, Ticket.resolved_at <= until)))
    report.tickets_resolved = len(resolved)
    met, report.response_counted, report.response_pending = first_response_compliance(session, since, until)
    report.response_met = _share(met, report.response_counted)
    report.resolution_met = _share(sum(1 for r in resolved if r[2] <= r[3]), len(resolved))
    report.open_breached = session.scalar(select(func.count()).select_from(Ticket).where(breached_clause(until))) or 0

    ratings = list(session.scalars(select(SurveyResponse.rating).where(SurveyResponse.created_at >= since,
                                                                       SurveyResponse.created_at <= until)))
    report.csat_responses = len(ratings)
    report.csat_average = sum(ratings) / len(ratings) if ratings else None
    report.csat_satisfied = _share(sum(1 for r in ratings if r >= 4), len(ratings))
    return report

