"""The reports' breakdowns for one period: tickets by category, type and priority with their SLA compliance and
times (median and p90), escalation and reopen rates, the backlog by age, satisfaction with its comments, time
spent by category and agent, and the articles that deflect, that go stale while still read, and whose citing
tickets keep coming back.

Plain reads over a Session; each figure's definition is on the reports page (templates/reports/_breakdowns.html).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import (OPEN_STATUSES, Article, ArticleFeedback, ArticleTicketLink, PortalEvent, SurveyResponse,
                     Ticket, TicketEvent, TimeEntry, User)
from .sla import target_outcome

AGE_BANDS = ((1, "< 1"), (3, "1–3"), (7, "3–7"), (30, "7–30"), (None, "> 30"))  # days open
STALE_DAYS = 180
COMMENTS = 10


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in (0, 1]) of the values; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Group:
    """The tickets of one category, type or priority created in the period."""

    created: int = 0
    response_met: int = 0
    response_judged: int = 0
    resolution_met: int = 0
    resolution_judged: int = 0
    first_hours: list[float] = field(default_factory=list)
    resolve_hours: list[float] = field(default_factory=list)

    @property
    def response_share(self) -> float | None:
        return self.response_met / self.response_judged if self.response_judged else None

    @property
    def resolution_share(self) -> float | None:
        return self.resolution_met / self.resolution_judged if self.resolution_judged else None

    def median_first(self) -> float | None:
        return percentile(self.first_hours, 0.5)

    def p90_first(self) -> float | None:
        return percentile(self.first_hours, 0.9)

    def median_resolve(self) -> float | None:
        return percentile(self.resolve_hours, 0.5)

    def p90_resolve(self) -> float | None:
        return percentile(self.resolve_hours, 0.9)


@dataclass
class Breakdowns:
    """Every breakdown of the reports page for one period."""

    total: Group = field(default_factory=Group)
    by_category: dict[str, Group] = field(default_factory=dict)
    by_type: dict[str, Group] = field(default_factory=dict)
    by_priority: dict[int, Group] = field(default_factory=dict)
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0
    backlog_by_age: list[tuple[str, int]] = field(default_factory=list)
    comments: list[tuple[SurveyResponse, Ticket]] = field(default_factory=list)
    minutes_by_category: list[tuple[str, int]] = field(default_factory=list)
    minutes_by_agent: list[tuple[str, int]] = field(default_factory=list)
    deflecting: list[tuple[Article, int]] = field(default_factory=list)
    stale: list[tuple[Article, int]] = field(default_factory=list)
    reopening: list[tuple[Article, int, int]] = field(default_factory=list)
    unhelpful_comments: list[tuple[Article, ArticleFeedback]] = field(default_factory=list)

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.total.created if self.total.created else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.resolved if self.resolved else None


def _judge(group: Group, due: datetime, done: datetime | None, now: datetime, kind: str,
           closed_at: datetime | None = None) -> None:
    """Count one SLA target once it is decided (domain/sla.py target_outcome)."""
    outcome = target_outcome(due, done, closed_at, now)
    if outcome is not None:
        setattr(group, f"{kind}_judged", getattr(group, f"{kind}_judged") + 1)
        setattr(group, f"{kind}_met", getattr(group, f"{kind}_met") + (outcome == "met"))


def _add(group: Group, ticket, now: datetime) -> None:
    created_at, responded_at, resolved_at = ticket.created_at, ticket.first_response_at, ticket.resolved_at
    group.created += 1
    _judge(group, ticket.response_due_at, responded_at, now, "response", ticket.closed_at)
    _judge(group, ticket.resolution_due_at, resolved_at, now, "resolution", ticket.closed_at)
    if responded_at is not None:
        group.first_hours.append((responded_at - created_at).total_seconds() / 3600)
    if resolved_at is not None:
        group.resolve_hours.append((resolved_at - created_at).total_seconds() / 3600)


def build_breakdowns(session: Session, since: datetime, until: datetime) -> Breakdowns:
    """The breakdowns of the tickets created (and the events recorded) from ``since`` to ``until``."""
    result = Breakdowns()
    rows = session.execute(select(Ticket.id, Ticket.category, Ticket.type, Ticket.priority, Ticket.level,
                                  Ticket.created_at, Ticket.first_response_at, Ticket.resolved_at,
                                  Ticket.response_due_at, Ticket.resolution_due_at, Ticket.closed_at)
                           .where(Ticket.created_at >= since, Ticket.created_at <= until)).all()
    for ticket in rows:
        for groups, key in ((result.by_category, ticket.category), (result.by_type, ticket.type.value),
                            (result.by_priority, ticket.priority)):
            _add(groups.setdefault(key, Group()), ticket, until)
        _add(result.total, ticket, until)
        result.escalated += ticket.level == 2
    result.by_category = dict(sorted(result.by_category.items(), key=lambda item: -item[1].created))
    result.by_priority = dict(sorted(result.by_priority.items()))
    _reopens(session, result, since, until)
    _backlog(session, result, until)
    result.comments = list(session.execute(
        select(SurveyResponse, Ticket).join(Ticket, SurveyResponse.ticket_id == Ticket.id)
        .where(SurveyResponse.created_at >= since, SurveyResponse.created_at <= until, SurveyResponse.comment != "")
        .order_by(SurveyResponse.created_at.desc()).limit(COMMENTS)))
    spent = (TimeEntry.created_at >= since) & (TimeEntry.created_at <= until)
    result.minutes_by_category = [tuple(r) for r in session.execute(
        select(Ticket.category, func.sum(TimeEntry.minutes)).join(Ticket, TimeEntry.ticket_id == Ticket.id)
        .where(spent).group_by(Ticket.category).order_by(func.sum(TimeEntry.minutes).desc()))]
    result.minutes_by_agent = [tuple(r) for r in session.execute(
        select(User.name, func.sum(TimeEntry.minutes)).join(User, TimeEntry.agent_id == User.id)
        .where(spent).group_by(User.id, User.name).order_by(func.sum(TimeEntry.minutes).desc()))]
    _articles(session, result, since, until)
    return result


def _reopens(session: Session, result: Breakdowns, since: datetime, until: datetime) -> None:
    """Of the tickets resolved in the period, how many were reopened after a resolution (ever)."""
    resolved = select(Ticket.id).where(Ticket.resolved_at >= since, Ticket.resolved_at <= until)
    result.resolved = session.scalar(select(func.count()).select_from(resolved.subquery())) or 0
    reopened = session.execute(select(TicketEvent.ticket_id, TicketEvent.data).where(
        TicketEvent.kind == "status", TicketEvent.ticket_id.in_(resolved.scalar_subquery())))
    result.reopened = len({ticket_id for ticket_id, data in reopened
                           if data.get("from") in ("resolved", "closed") and data.get("to") == "open"})


def _backlog(session: Session, result: Breakdowns, now: datetime) -> None:
    """The tickets open now by how many days they have been open."""
    ages = Counter()
    for created_at in session.scalars(select(Ticket.created_at).where(Ticket.status.in_(OPEN_STATUSES))):
        days = (now - created_at).total_seconds() / 86400
        ages[next(label for limit, label in AGE_BANDS if limit is None or days < limit)] += 1
    result.backlog_by_age = [(label, ages.get(label, 0)) for _, label in AGE_BANDS]


def _articles(session: Session, result: Breakdowns, since: datetime, until: datetime) -> None:
    """Articles that deflect most; read but not updated in STALE_DAYS; whose citing tickets were reopened; what
    readers wrote when one did not help."""
    result.unhelpful_comments = list(session.execute(
        select(Article, ArticleFeedback).join(ArticleFeedback, ArticleFeedback.article_id == Article.id)
        .where(ArticleFeedback.helpful.is_(False), ArticleFeedback.comment != "", ArticleFeedback.created_at >= since,
               ArticleFeedback.created_at <= until)
        .order_by(ArticleFeedback.created_at.desc()).limit(COMMENTS)))
    in_period = (PortalEvent.created_at >= since) & (PortalEvent.created_at <= until)
    counts = defaultdict(dict)
    for kind, slug, number in session.execute(
            select(PortalEvent.kind, PortalEvent.article_slug, func.count())
            .where(in_period, PortalEvent.kind.in_(("solved", "article_opened")), PortalEvent.article_slug != "")
            .group_by(PortalEvent.kind, PortalEvent.article_slug)):
        counts[kind][slug] = number
    slugs = set(counts["solved"]) | set(counts["article_opened"])
    articles = {a.slug: a for a in session.scalars(select(Article).where(Article.slug.in_(slugs)))} if slugs else {}
    result.deflecting = sorted(((articles[s], n) for s, n in counts["solved"].items() if s in articles),
                               key=lambda row: -row[1])[:10]
    old = until - timedelta(days=STALE_DAYS)
    result.stale = sorted(((articles[s], n) for s, n in counts["article_opened"].items()
                           if s in articles and articles[s].updated_at < old and articles[s].status == "published"),
                          key=lambda row: -row[1])[:10]
    cited = session.execute(select(ArticleTicketLink.article_id, ArticleTicketLink.ticket_id).where(
        ArticleTicketLink.relation == "cited", ArticleTicketLink.created_at >= since,
        ArticleTicketLink.created_at <= until)).all()
    if not cited:
        return
    reopened_tickets = {ticket_id for ticket_id, data in session.execute(
        select(TicketEvent.ticket_id, TicketEvent.data).where(
            TicketEvent.kind == "status", TicketEvent.ticket_id.in_({t for _, t in cited})))
        if data.get("from") in ("resolved", "closed") and data.get("to") == "open"}
    per_article: dict[int, list[int]] = defaultdict(list)
    for article_id, ticket_id in cited:
        per_article[article_id].append(ticket_id)
    by_id = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(per_article)))}
    rows = [(by_id[a], len(tickets), sum(1 for t in tickets if t in reopened_tickets))
            for a, tickets in per_article.items() if a in by_id]
    result.reopening = sorted([row for row in rows if row[2]], key=lambda row: (-row[2] / row[1], -row[1]))[:10]
