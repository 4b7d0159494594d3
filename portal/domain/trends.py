"""The service desk's figures over time: one value per day or week for self-service, ticket volume, SLA
compliance, response and resolution times, backlog, escalation and satisfaction.

Each chart is computed from the rows of its period (tickets, portal events, survey answers) and says in
``definition`` how; the page draws it (portal/charts.py), shows its table and offers it as CSV. Ticket filters
(category, type, priority, language, team, assigned agent) apply to the ticket charts; portal questions carry no category, so
the self-service charts are never filtered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import (AGENT_ROLES, OPEN_STATUSES, PortalEvent, SurveyResponse, Ticket, TicketEvent, TicketType,
                     TimeEntry, User, utcnow)
from .sla import target_outcome

GRAINS = ("day", "week")
# A chart over more buckets than this is drawn by week (a year by day is unreadable and slow to draw).
MAX_BUCKETS = 120


@dataclass(frozen=True)
class TrendFilters:
    """Which tickets the ticket charts count (None: all)."""

    category: str | None = None
    ticket_type: str | None = None
    priority: int | None = None
    lang: str | None = None
    team_id: int | None = None
    agent_id: int | None = None  # the assignee

    @property
    def active(self) -> bool:
        return any(value is not None for value in (self.category, self.ticket_type, self.priority, self.lang,
                                                   self.team_id, self.agent_id))


@dataclass
class Series:
    """One line of a chart: a value (or None: nothing to compute it from) per bucket."""

    key: str
    values: list[float | None]
    drawn: bool = True  # False: in the table and the CSV only (another unit than the chart's)


@dataclass
class Chart:
    """A figure over time: its buckets, its lines, what unit they are in and how they are computed."""

    key: str
    unit: str  # count | percent | hours | rating
    buckets: list[datetime]
    series: list[Series] = field(default_factory=list)
    filtered: bool = False  # whether the ticket filters apply to it

    def rows(self) -> list[tuple[datetime, list[float | None]]]:
        """The table: per bucket, the value of each series."""
        return [(bucket, [s.values[i] for s in self.series]) for i, bucket in enumerate(self.buckets)]


def filter_agents(session: Session) -> list[User]:
    """Everyone tickets can be assigned to, active or not (a filter of past periods needs those who left)."""
    return list(session.scalars(select(User).where(User.role.in_(AGENT_ROLES)).order_by(User.name)))


def grain_for(days: int, grain: str) -> str:
    """The grain a period is drawn by: by week when by day it would have more than ``MAX_BUCKETS`` periods."""
    return "week" if grain == "day" and days + 1 > MAX_BUCKETS else grain


def bucket_starts(since: datetime, until: datetime, grain: str) -> list[datetime]:
    """The start of every day (or Monday-started week) from the one holding ``since`` to the one holding
    ``until``, in UTC."""
    start = since.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(days=1)
    if grain == "week":
        start -= timedelta(days=start.weekday())
        step = timedelta(weeks=1)
    starts = []
    while start <= until:
        starts.append(start)
        start += step
    return starts


class _Buckets:
    """Finds the bucket of a moment."""

    def __init__(self, starts: list[datetime], grain: str):
        self.starts = starts
        self.first = starts[0]
        self.step = timedelta(days=1 if grain == "day" else 7)

    def index(self, moment: datetime | None) -> int | None:
        if moment is None or moment < self.first:
            return None
        position = int((moment - self.first) / self.step)
        return position if position < len(self.starts) else None

    def end(self, position: int) -> datetime:
        return self.starts[position] + self.step


def day_of(column, dialect: str):
    """The UTC day of a timestamp column as 'YYYY-MM-DD' text, in SQL (SQLite keeps timestamps as UTC text)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def _day_position(buckets: "_Buckets", day_text) -> int | None:
    """The bucket of a 'YYYY-MM-DD' UTC day (as day_of gives it)."""
    return buckets.index(datetime.strptime(str(day_text), "%Y-%m-%d").replace(tzinfo=timezone.utc))


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _hours(values: list[float]) -> float | None:
    return round(median(values), 2) if values else None


def _ticket_query(filters: TrendFilters):
    query = select(Ticket)
    if filters.category is not None:
        query = query.where(Ticket.category == filters.category)
    if filters.ticket_type is not None:
        query = query.where(Ticket.type == TicketType(filters.ticket_type))
    if filters.priority is not None:
        query = query.where(Ticket.priority == filters.priority)
    if filters.lang is not None:
        query = query.where(Ticket.lang == filters.lang)
    if filters.team_id is not None:
        query = query.where(Ticket.team_id == filters.team_id)
    if filters.agent_id is not None:
        query = query.where(Ticket.assignee_id == filters.agent_id)
    return query


def build_trends(session: Session, days: int, grain: str, filters: TrendFilters = TrendFilters(),
                 now: datetime | None = None) -> list[Chart]:
    """Every chart of the trends page over the last ``days`` days, by ``grain`` (day or week)."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}")
    until = now or utcnow()
    since = until - timedelta(days=days)
    grain = grain_for(days, grain)
    starts = bucket_starts(since, until, grain)
    buckets = _Buckets(starts, grain)
    count = len(starts)
    return [*_self_service(session, buckets, count, until),
            *_tickets(session, buckets, count, until, filters)]


def _self_service(session: Session, buckets: _Buckets, count: int, until: datetime) -> list[Chart]:
    """Questions, deflections and tickets from the portal; the deflection rate; the unanswered share."""
    totals = {kind: [0] * count for kind in ("search", "solved", "ticket_created")}
    solved_by_mail, offered_by_mail = [0] * count, [0] * count
    answered, judged = [0] * count, [0] * count
    day = day_of(PortalEvent.created_at, session.get_bind().dialect.name)
    in_period = (PortalEvent.created_at >= buckets.first) & (PortalEvent.created_at <= until)
    # Counted by UTC day in the database (a year is ~100k events but only a few thousand groups).
    rows = session.execute(select(PortalEvent.kind, PortalEvent.channel, day, PortalEvent.answered, func.count())
                           .where(PortalEvent.kind.in_(tuple(totals)), in_period)
                           .group_by(PortalEvent.kind, PortalEvent.channel, day, PortalEvent.answered))
    for kind, channel, day_text, was_answered, number in rows:
        position = _day_position(buckets, day_text)
        if position is None:
            continue
        if channel == "email":
            if kind == "solved":
                solved_by_mail[position] += number
            continue
        totals[kind][position] += number
        if kind == "search" and was_answered is not None:
            judged[position] += number
            answered[position] += number if was_answered else 0
    # The tickets whose acknowledgement offered articles, per day (the e-mail deflection's denominator).
    for day_text, number in session.execute(
            select(day, func.count(func.distinct(PortalEvent.ticket_id)))
            .where(in_period, PortalEvent.kind == "suggestion_shown", PortalEvent.channel == "email")
            .group_by(day)):
        position = _day_position(buckets, day_text)
        if position is not None:
            offered_by_mail[position] += number
    funnel = Chart("self_service", "count", buckets.starts,
                   [Series(kind, [float(v) for v in values]) for kind, values in totals.items()])
    deflection = Chart("deflection", "percent", buckets.starts, [
        Series("deflection_rate", [_share(s, s + t) for s, t in zip(totals["solved"], totals["ticket_created"])]),
        Series("email_deflection_rate", [_share(s, o) for s, o in zip(solved_by_mail, offered_by_mail)])])
    unanswered = Chart("unanswered", "percent", buckets.starts, [Series("unanswered_share", [
        _share(j - a, j) for a, j in zip(answered, judged)])])
    return [funnel, deflection, unanswered]


def _tickets(session: Session, buckets: _Buckets, count: int, until: datetime,
             filters: TrendFilters) -> list[Chart]:
    """Volume, SLA compliance, times, backlog, escalation and satisfaction of the filtered tickets."""
    first = buckets.first
    query = _ticket_query(filters).with_only_columns(
        Ticket.created_at, Ticket.first_response_at, Ticket.resolved_at, Ticket.response_due_at,
        Ticket.resolution_due_at, Ticket.level, Ticket.status, Ticket.closed_at).where(
        Ticket.created_at <= until,
        Ticket.resolved_at.is_(None) | (Ticket.resolved_at >= first) | (Ticket.response_due_at >= first)
        | (Ticket.resolution_due_at >= first))
    created, resolved, escalated = [0] * count, [0] * count, [0] * count
    response_met, response_judged = [0] * count, [0] * count
    resolution_met, resolution_judged = [0] * count, [0] * count
    first_hours: list[list[float]] = [[] for _ in range(count)]
    resolve_hours: list[list[float]] = [[] for _ in range(count)]
    backlog_change = [0] * (count + 1)
    for (created_at, responded_at, resolved_at, response_due, resolution_due, level, status,
         closed_at) in session.execute(query):
        made = buckets.index(created_at)
        if made is not None:
            created[made] += 1
            escalated[made] += level == 2
        done = buckets.index(resolved_at)
        if done is not None:
            resolved[done] += 1
            resolve_hours[done].append((resolved_at - created_at).total_seconds() / 3600)
        answered = buckets.index(responded_at)
        if answered is not None:
            first_hours[answered].append((responded_at - created_at).total_seconds() / 3600)
        _count_target(buckets, until, response_due, responded_at, response_met, response_judged, closed_at)
        _count_target(buckets, until, resolution_due, resolved_at, resolution_met, resolution_judged, closed_at)
        if resolved_at is None and status not in OPEN_STATUSES:
            continue
        # Open at the end of bucket p (the end of the last one being now): created before it, not yet resolved.
        opened = 0 if created_at < first else made
        if resolved_at is None or resolved_at >= until:
            closed = count
        else:
            closed = 0 if resolved_at < first else buckets.index(resolved_at)
        if opened is not None and opened < closed:
            backlog_change[opened] += 1
            backlog_change[closed] -= 1
    backlog, running = [], 0
    for change in backlog_change[:count]:
        running += change
        backlog.append(float(running))
    ratings = _ratings(session, buckets, count, until, filters)
    reopened, minutes = _reopens_and_time(session, buckets, count, until, filters)
    starts = buckets.starts
    return [
        Chart("volume", "count", starts, [Series("created", [float(v) for v in created]),
                                          Series("resolved", [float(v) for v in resolved])], filtered=True),
        Chart("sla", "percent", starts, [
            Series("response_met", [_share(m, j) for m, j in zip(response_met, response_judged)]),
            Series("resolution_met", [_share(m, j) for m, j in zip(resolution_met, resolution_judged)])],
            filtered=True),
        Chart("times", "hours", starts, [Series("first_response_hours", [_hours(v) for v in first_hours]),
                                         Series("resolution_hours", [_hours(v) for v in resolve_hours])],
              filtered=True),
        Chart("backlog", "count", starts, [Series("open_at_end", backlog)], filtered=True),
        Chart("escalation", "percent", starts, [Series("escalated_share", [
            _share(e, c) for e, c in zip(escalated, created)])], filtered=True),
        Chart("csat", "rating", starts, [
            Series("csat_average", [round(sum(r) / len(r), 2) if r else None for r in ratings]),
            Series("csat_responses", [float(len(r)) for r in ratings], drawn=False)], filtered=True),
        Chart("reopens", "percent", starts, [Series("reopened_share", [
            _share(r, d) for r, d in zip(reopened, resolved)])], filtered=True),
        Chart("time_spent", "hours", starts, [Series("hours_spent", [round(m / 60, 1) for m in minutes])],
              filtered=True),
    ]


def _reopens_and_time(session: Session, buckets: _Buckets, count: int, until: datetime,
                      filters: TrendFilters) -> tuple[list[int], list[int]]:
    """Per bucket: the tickets resolved in it that were reopened after a resolution (ever), and the minutes
    agents logged in it, of the filtered tickets."""
    reopened, minutes = [0] * count, [0] * count
    tickets = _ticket_query(filters).with_only_columns(Ticket.id)
    resolved = dict(session.execute(_ticket_query(filters).with_only_columns(Ticket.id, Ticket.resolved_at).where(
        Ticket.resolved_at >= buckets.first, Ticket.resolved_at <= until)).all())
    if resolved:
        again = {ticket_id for ticket_id, data in session.execute(
            select(TicketEvent.ticket_id, TicketEvent.data).where(
                TicketEvent.kind == "status", TicketEvent.ticket_id.in_(tickets.where(
                    Ticket.resolved_at >= buckets.first, Ticket.resolved_at <= until).scalar_subquery())))
            if data.get("from") in ("resolved", "closed") and data.get("to") == "open"}
        for ticket_id in again:
            position = buckets.index(resolved[ticket_id])
            if position is not None:
                reopened[position] += 1
    for created_at, spent in session.execute(select(TimeEntry.created_at, TimeEntry.minutes).where(
            TimeEntry.created_at >= buckets.first, TimeEntry.created_at <= until,
            TimeEntry.ticket_id.in_(tickets.scalar_subquery()))):
        position = buckets.index(created_at)
        if position is not None:
            minutes[position] += spent
    return reopened, minutes


def _ratings(session: Session, buckets: _Buckets, count: int, until: datetime,
             filters: TrendFilters) -> list[list[int]]:
    """The survey ratings given in each bucket (of the filtered tickets)."""
    ratings: list[list[int]] = [[] for _ in range(count)]
    query = select(SurveyResponse.rating, SurveyResponse.created_at).where(
        SurveyResponse.created_at >= buckets.first, SurveyResponse.created_at <= until)
    if filters.active:
        query = query.where(SurveyResponse.ticket_id.in_(
            _ticket_query(filters).with_only_columns(Ticket.id).scalar_subquery()))
    for rating, created_at in session.execute(query):
        position = buckets.index(created_at)
        if position is not None:
            ratings[position].append(rating)
    return ratings


def _count_target(buckets: _Buckets, until: datetime, due: datetime, done: datetime | None, met: list[int],
                  judged: list[int], closed_at: datetime | None = None) -> None:
    """Count one SLA target (domain/sla.py target_outcome) in the bucket where it fell due (a met target not
    yet due: where it was met)."""
    outcome = target_outcome(due, done, closed_at, until)
    if outcome is None:
        return
    position = buckets.index(due if due <= until else done)
    if position is not None:
        judged[position] += 1
        met[position] += outcome == "met"
