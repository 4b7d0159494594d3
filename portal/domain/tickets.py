"""Tickets the ITIL way: creation with priority and SLA, assignment, escalation, replies, resolution, survey.

Every change is written to the ticket's activity log (TicketEvent) with who and when. Functions that change
a ticket take the version the user saw and refuse with Conflict if someone changed it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import N_, Conflict, Invalid, NotAllowed, NotFound
from .numbers import parse_id, parse_int
from .models import (OPEN_STATUSES, Role, SurveyResponse, Team, Ticket, TicketEvent, TicketStatus,
                     TicketSuggestion, TicketType, TimeEntry, User, utcnow)
from .sla import SlaPolicy, priority_for

MAX_SUBJECT = 200
MAX_TEXT = 20_000
ASSET_TAG_MAX = 40


# ----- reading ----------------------------------------------------------------------------------------


def can_view(user: User | None, ticket: Ticket) -> bool:
    """Agents see every ticket; a customer sees only their own, once their address is confirmed (a ticket
    e-mailed from an address belongs to it, not to whoever registered that address without confirming it)."""
    return user is not None and (user.is_agent or (ticket.requester_id == user.id and user.email_verified))


def get_ticket(session: Session, ticket_id: int, user: User | None) -> Ticket:
    """The ticket if this user may see it; NotFound otherwise (a customer cannot probe other numbers)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not can_view(user, ticket):
        raise NotFound(N_("There is no ticket #%(number)s."), number=ticket_id)
    return ticket


def visible_events(ticket: Ticket, user: User) -> list[TicketEvent]:
    """The activity log as this user may see it: customers never see internal notes or internal changes."""
    if user.is_agent:
        return list(ticket.events)
    return [event for event in ticket.events if event.public]


def tickets_of(session: Session, requester: User) -> list[Ticket]:
    """A customer's tickets, newest first (none until their address is confirmed: see ``can_view``)."""
    if not requester.email_verified:
        return []
    return list(session.scalars(select(Ticket).where(Ticket.requester_id == requester.id)
                                .order_by(Ticket.id.desc())))


# ----- creation and assignment ------------------------------------------------------------------------


def has_line_break(text: str) -> bool:
    """Whether the text spans more than one line (any line break that ``str.splitlines`` knows)."""
    return len((text + "x").splitlines()) > 1


def _check_text(value: str, field: str, limit: int, required: bool = True, one_line: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise Invalid(N_("The %(field)s is required."), field=field)
    if len(value) > limit:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=field, max=limit)
    if one_line and has_line_break(value):
        raise Invalid(N_("The %(field)s must fit on one line, without line breaks."), field=field)
    return value


def _check_level(value, field: str) -> int:
    value = parse_int(value)
    if value not in (1, 2, 3):
        raise Invalid(N_("The %(field)s must be 1 (high), 2 (medium) or 3 (low)."), field=field)
    return value


def _log(ticket: Ticket, actor: User | None, kind: str, public: bool, body: str = "", **data) -> TicketEvent:
    event = TicketEvent(actor_id=actor.id if actor else None, actor=actor, kind=kind, public=public,
                        body=body, data=data)
    ticket.events.append(event)
    return event


def team_for_category(session: Session, category: str) -> Team | None:
    """The team that handles a category (the first one listing it), or None."""
    for team in session.scalars(select(Team).order_by(Team.id)):
        if category in (team.categories or []):
            return team
    return None


def _roles_for_level(level: int) -> tuple[Role, ...]:
    return (Role.AGENT_L1,) if level == 1 else (Role.AGENT_L2, Role.ADMIN)


def least_loaded_agent(session: Session, level: int, team: Team | None) -> User | None:
    """The active agent of that level (in the team, if it has one at that level) with fewest open tickets."""
    load = (select(Ticket.assignee_id, func.count().label("n")).where(Ticket.status.in_(OPEN_STATUSES))
            .group_by(Ticket.assignee_id).subquery())
    # At L2, admins take tickets only when no L2 agent is free of more work than them.
    admins_last = (User.role == Role.ADMIN)
    query = (select(User).outerjoin(load, load.c.assignee_id == User.id)
             .where(User.active.is_(True), User.role.in_(_roles_for_level(level)))
             .order_by(func.coalesce(load.c.n, 0), admins_last, User.id))
    if team is not None:
        in_team = session.scalars(query.where(User.team_id == team.id)).first()
        if in_team is not None:
            return in_team
    return session.scalars(query).first()


def create_ticket(session: Session, requester: User, subject: str, description: str, category: str,
                  impact, urgency, policy: SlaPolicy, ticket_type: str = TicketType.INCIDENT.value,
                  asset_tag: str = "", lang: str = "es", suggestions: list[tuple[str, str]] = (),
                  now: datetime | None = None, by_email: bool = False, opened: Iterable[str] = ()) -> Ticket:
    """Open a ticket: priority from impact x urgency, SLA due times, automatic assignment at L1.

    ``suggestions`` are the (slug, title) pairs of the articles the portal showed before, kept on the
    ticket so the agent sees what the customer already tried; ``opened`` the slugs among them the customer
    opened (read) rather than only saw listed. A customer must have confirmed their address,
    except for a ticket that came ``by_email`` from that address (as every mail help desk takes them; its
    replies go back to the same address).
    """
    if not requester.email_verified and not by_email:
        raise NotAllowed(N_("Confirm your e-mail address before opening a ticket: open the link we sent to "
                            "%(email)s, or ask for a new one."), email=requester.email)
    now = now or utcnow()
    subject = _check_text(subject, N_("subject"), MAX_SUBJECT, one_line=True)
    description = _check_text(description, N_("description"), MAX_TEXT)
    impact, urgency = _check_level(impact, N_("impact")), _check_level(urgency, N_("urgency"))
    try:
        kind = TicketType(ticket_type)
    except ValueError:
        raise Invalid(N_("Unknown ticket type '%(type)s'."), type=ticket_type) from None
    priority = priority_for(impact, urgency)
    response_due, resolution_due = policy.due_times(priority, now)
    ticket = Ticket(subject=subject, description=description, type=kind, category=category or "general",
                    impact=impact, urgency=urgency, priority=priority, status=TicketStatus.NEW, level=1,
                    lang=lang if lang in ("es", "en") else "es",
                    asset_tag=_check_text(asset_tag, N_("asset tag"), ASSET_TAG_MAX, required=False,
                                              one_line=True),
                    requester=requester, requester_id=requester.id, created_at=now, updated_at=now,
                    response_due_at=response_due, resolution_due_at=resolution_due)
    session.add(ticket)
    _log(ticket, requester, "created", True, priority=priority, type=kind.value, category=ticket.category)
    for rank, (slug, title) in enumerate(dict(suggestions).items()):
        ticket.suggestions.append(TicketSuggestion(article_slug=slug, title=title[:300], rank=rank,
                                                   opened=slug in opened))
    ticket.team = team_for_category(session, ticket.category)
    session.flush()
    agent = least_loaded_agent(session, 1, ticket.team)
    if agent is not None:
        ticket.assignee = agent
        _log(ticket, None, "assigned", False, to=agent.name, automatic=True)
    session.flush()
    return ticket


# ----- changes by agents -------------------------------------------------------------------------------


def _require_agent(user: User) -> None:
    if not user.is_agent:
        raise NotAllowed(N_("Only agents can do this."))


def _check_version(ticket: Ticket, expected_version) -> None:
    if parse_int(expected_version) != ticket.version:
        raise changed_meanwhile(ticket)


def changed_meanwhile(ticket: Ticket) -> Conflict:
    """The refusal for a change to a ticket that someone else changed since the user loaded it."""
    last = ticket.events[-1] if ticket.events else None
    who = last.actor.name if last is not None and last.actor is not None else "Mesa"
    return Conflict(N_("Ticket #%(number)s was changed by %(who)s since you opened it. Nothing was saved; "
                       "your text is kept below. Review the change and try again."), number=ticket.id, who=who)


def _touch(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now


def _first_response(ticket: Ticket, now: datetime) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = now


def assign(session: Session, ticket: Ticket, actor: User, assignee_id, expected_version,
           now: datetime | None = None) -> TicketEvent:
    """Reassign by hand (to an agent, or to nobody with assignee_id empty)."""
    _require_agent(actor)
    _check_version(ticket, expected_version)
    now = now or utcnow()
    assignee = None
    if assignee_id not in (None, "", 0, "0"):
        assignee_key = parse_id(assignee_id)
        assignee = session.get(User, assignee_key) if assignee_key else None
        if assignee is None or not assignee.is_agent or not assignee.active:
            raise Invalid(N_("Tickets can only be assigned to an active agent."))
    previous = ticket.assignee.name if ticket.assignee else ""
    if assignee is None and ticket.assignee is None or assignee is ticket.assignee:
        raise Invalid(N_("The ticket is already assigned that way."))
    ticket.assignee = assignee
    ticket.assignee_id = assignee.id if assignee else None
    _touch(ticket, now)
    return _log(ticket, actor, "assigned", False, **{"from": previous, "to": assignee.name if assignee else ""})


AGENT_STATUS_CHOICES = (TicketStatus.OPEN, TicketStatus.PENDING_CUSTOMER, TicketStatus.CLOSED)


def change_status(session: Session, ticket: Ticket, actor: User, status: str, expected_version,
                  now: datetime | None = None) -> TicketEvent:
    """Set open / pending customer / closed. Resolution and escalation have their own steps."""
    _require_agent(actor)
    _check_version(ticket, expected_version)
    try:
        new = TicketStatus(status)
    except ValueError:
        new = None
    if new not in AGENT_STATUS_CHOICES:
        raise Invalid(N_("Choose open, pending customer or closed; resolving and escalating have their own "
                         "buttons."))
    if new == ticket.status:
        raise Invalid(N_("The ticket already has that status."))
    if new == TicketStatus.CLOSED and ticket.status != TicketStatus.RESOLVED:
        raise Invalid(N_("Only a resolved ticket can be closed."))
    now = now or utcnow()
    previous = ticket.status
    ticket.status = new
    if new == TicketStatus.CLOSED:
        ticket.closed_at = now
    if new == TicketStatus.OPEN and previous == TicketStatus.RESOLVED:
        ticket.resolved_at = None
    _touch(ticket, now)
    return _log(ticket, actor, "status", True, **{"from": previous.value, "to": new.value})


def change_priority(session: Session, ticket: Ticket, actor: User, impact, urgency, policy: SlaPolicy,
                    expected_version, now: datetime | None = None) -> TicketEvent:
    """Re-assess impact and urgency; the priority and the SLA due times follow (counted from creation)."""
    _require_agent(actor)
    _check_version(ticket, expected_version)
    impact, urgency = _check_level(impact, N_("impact")), _check_level(urgency, N_("urgency"))
    if (impact, urgency) == (ticket.impact, ticket.urgency):
        raise Invalid(N_("Impact and urgency are unchanged."))
    previous = ticket.priority
    ticket.impact, ticket.urgency = impact, urgency
    ticket.priority = priority_for(impact, urgency)
    ticket.response_due_at, ticket.resolution_due_at = policy.due_times(ticket.priority, ticket.created_at)
    _touch(ticket, now or utcnow())
    return _log(ticket, actor, "priority", False, **{"from": previous, "to": ticket.priority,
                                                    "impact": impact, "urgency": urgency})


def escalate(session: Session, ticket: Ticket, actor: User | None, reason: str, expected_version=None,
             now: datetime | None = None) -> TicketEvent:
    """L1 -> L2 with a reason: the ticket goes to the least-loaded L2 agent of its team.

    ``actor`` None means Mesa did it automatically (no version check then: it runs on fresh data).
    """
    if actor is not None:
        _require_agent(actor)
        _check_version(ticket, expected_version)
    reason = _check_text(reason, N_("reason"), 1000, required=actor is not None)
    if ticket.level >= 2:
        raise Invalid(N_("The ticket is already at L2."))
    if not ticket.is_open:
        raise Invalid(N_("Only open tickets can be escalated."))
    now = now or utcnow()
    ticket.level = 2
    ticket.status = TicketStatus.ESCALATED
    agent = least_loaded_agent(session, 2, ticket.team)
    ticket.assignee = agent
    ticket.assignee_id = agent.id if agent else None
    _touch(ticket, now)
    return _log(ticket, actor, "escalated", False, reason, to=agent.name if agent else "",
                automatic=actor is None, share=None if actor else int(round(100 * _used_share(ticket, now))))


def _used_share(ticket: Ticket, now: datetime) -> float:
    total = (ticket.resolution_due_at - ticket.created_at).total_seconds()
    return (now - ticket.created_at).total_seconds() / total if total > 0 else 1.0


def due_for_escalation(ticket: Ticket, policy: SlaPolicy, now: datetime) -> bool:
    """Whether an open L1 ticket (not waiting on the customer) has used up its share of the resolution time."""
    return (ticket.level == 1 and ticket.is_open and ticket.status != TicketStatus.PENDING_CUSTOMER
            and now >= policy.escalation_time(ticket.created_at, ticket.resolution_due_at))


def tickets_due_for_escalation(session: Session, policy: SlaPolicy, now: datetime) -> list[Ticket]:
    """Every ticket the sweep escalates now, oldest first."""
    candidates = session.scalars(select(Ticket).where(Ticket.level == 1, Ticket.status.in_(OPEN_STATUSES),
                                                      Ticket.status != TicketStatus.PENDING_CUSTOMER)
                                 .order_by(Ticket.id))
    return [ticket for ticket in candidates if due_for_escalation(ticket, policy, now)]


def due_for_closing(ticket: Ticket, after_days: int, now: datetime) -> bool:
    """Whether a resolved ticket has waited ``after_days`` without the customer reopening it."""
    return (ticket.status == TicketStatus.RESOLVED and ticket.resolved_at is not None
            and ticket.resolved_at <= now - timedelta(days=after_days))


def tickets_due_for_closing(session: Session, after_days: int, now: datetime) -> list[Ticket]:
    """Every ticket the sweep closes now, oldest first."""
    return list(session.scalars(select(Ticket).where(Ticket.status == TicketStatus.RESOLVED,
                                                     Ticket.resolved_at <= now - timedelta(days=after_days))
                                .order_by(Ticket.id)))


def close_automatically(session: Session, ticket: Ticket, after_days: int, now: datetime | None = None
                        ) -> TicketEvent:
    """Close a resolved ticket the customer did not reopen in ``after_days`` (a public change: they are told)."""
    now = now or utcnow()
    if not due_for_closing(ticket, after_days, now):
        raise Invalid(N_("Only a ticket resolved more than %(days)s days ago is closed automatically."),
                      days=after_days)
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    _touch(ticket, now)
    return _log(ticket, None, "status", True, **{"from": "resolved", "to": "closed", "automatic": True,
                                                 "after_days": after_days})


def add_reply(session: Session, ticket: Ticket, author: User, body: str, public: bool, expected_version,
              now: datetime | None = None) -> TicketEvent:
    """A public reply (the customer sees it and is notified) or an internal note (agents only).

    A customer's reply reopens a ticket that was pending on them or resolved.
    """
    body = _check_text(body, N_("message"), MAX_TEXT)
    _check_version(ticket, expected_version)
    now = now or utcnow()
    if not author.is_agent:
        if ticket.requester_id != author.id:
            raise NotAllowed(N_("Only the requester and agents can reply."))
        if ticket.status == TicketStatus.CLOSED:
            raise Invalid(N_("This ticket is closed. Please open a new one."))
        event = _log(ticket, author, "reply", True, body)
        if ticket.status in (TicketStatus.PENDING_CUSTOMER, TicketStatus.RESOLVED):
            previous = ticket.status
            ticket.status = TicketStatus.OPEN
            ticket.resolved_at = None
            _log(ticket, author, "status", True, **{"from": previous.value, "to": "open"})
        _touch(ticket, now)
        return event
    if public:
        _first_response(ticket, now)
        if ticket.status == TicketStatus.NEW:
            ticket.status = TicketStatus.OPEN
    _touch(ticket, now)
    return _log(ticket, author, "reply" if public else N_("note"), public, body)


def log_time(session: Session, ticket: Ticket, agent: User, minutes, expected_version, note: str = "",
             now: datetime | None = None) -> TimeEntry:
    """Record time spent (1 minute to 24 hours per entry) on the version of the ticket the agent saw."""
    _require_agent(agent)
    _check_version(ticket, expected_version)
    minutes = parse_int(minutes, low=1, high=24 * 60)
    if minutes is None:
        raise Invalid(N_("Time spent must be a whole number of minutes from 1 to 1440."))
    now = now or utcnow()
    entry = TimeEntry(agent=agent, agent_id=agent.id, minutes=minutes,
                      note=_check_text(note, N_("note"), 200, required=False), created_at=now)
    ticket.time_entries.append(entry)
    _touch(ticket, now)  # the ticket row is written, so a save racing this one is refused (StaleDataError)
    _log(ticket, agent, "time", False, entry.note, minutes=minutes)
    session.flush()
    return entry


def total_minutes(ticket: Ticket) -> int:
    """All time spent on the ticket."""
    return sum(entry.minutes for entry in ticket.time_entries)


def resolve(session: Session, ticket: Ticket, actor: User, solution: str, expected_version,
            now: datetime | None = None) -> TicketEvent:
    """Resolve with a solution text (required); the customer is then asked for a rating."""
    _require_agent(actor)
    _check_version(ticket, expected_version)
    solution = _check_text(solution, N_("solution"), MAX_TEXT)
    if not ticket.is_open:
        raise Invalid(N_("The ticket is already resolved or closed."))
    now = now or utcnow()
    ticket.solution = solution
    ticket.status = TicketStatus.RESOLVED
    ticket.resolved_at = now
    _first_response(ticket, now)
    _touch(ticket, now)
    return _log(ticket, actor, "resolved", True, solution)


def close_as_self_solved(session: Session, ticket: Ticket, article_slug: str, article_title: str,
                         channel: str = "email", now: datetime | None = None) -> TicketEvent:
    """The requester says an article offered to them solved the problem: the ticket is closed as solved by
    self-service (a public event in its log; no solution or resolution time of the desk is recorded).
    Invalid when the ticket is no longer open (resolved, closed, or closed this way before)."""
    previous = _close_without_resolution(ticket, now or utcnow())
    return _log(ticket, ticket.requester, "self_solved", True, article_title, article=article_slug,
                channel=channel, **{"from": previous.value})


def _close_without_resolution(ticket: Ticket, now: datetime) -> TicketStatus:
    """Close an open ticket the requester says is fixed, recording no solution or resolution time of the desk
    (so the SLA and the reports do not count it as resolved by the desk); its status before. Invalid when the
    ticket is no longer open."""
    if not ticket.is_open:
        raise Invalid(N_("Ticket %(number)s is already resolved or closed: nothing was changed."),
                      number=ticket.number)
    previous = ticket.status
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    _touch(ticket, now)
    return previous


def close_by_requester(session: Session, ticket: Ticket, user: User, now: datetime | None = None) -> TicketEvent:
    """The requester's "Close my ticket, it is fixed": closed as solved by the requester (a public event in
    its log), like a self-service close. NotAllowed for anyone but the requester; Invalid when it is no longer
    open (an agent resolved it meanwhile: the requester then rates it instead)."""
    if ticket.requester_id != user.id:
        raise NotAllowed(N_("Only the requester can close the ticket as fixed."))
    previous = _close_without_resolution(ticket, now or utcnow())
    return _log(ticket, user, "closed_by_requester", True, **{"from": previous.value})


def submit_survey(session: Session, ticket: Ticket, user: User, rating, comment: str = "",
                  now: datetime | None = None) -> SurveyResponse:
    """The requester rates a resolved (or closed) ticket, once."""
    if ticket.requester_id != user.id:
        raise NotAllowed(N_("Only the requester can rate this ticket."))
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise Invalid(N_("You can rate the ticket once it is resolved."))
    if ticket.survey is not None:
        raise Invalid(N_("You have already rated this ticket. Thank you!"))
    rating = parse_int(rating, low=1, high=5)
    if rating is None:
        raise Invalid(N_("The rating must be from 1 to 5."))
    response = SurveyResponse(rating=rating, comment=_check_text(comment, N_("comment"), 2000, required=False),
                              created_at=now or utcnow())
    try:
        ticket.survey = response
        _log(ticket, user, "survey", False, response.comment, rating=rating)  # loading the log flushes too
        session.flush()
    except IntegrityError:
        # Another submission (a double click, a second tab) rated the ticket since it was read: one survey per
        # ticket is the database's rule too. Like every refusal, the caller rolls the session back.
        raise Invalid(N_("You have already rated this ticket. Thank you!")) from None
    return response


# ----- the queue -------------------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    """What the agent's queue shows."""

    mine: bool = False
    unassigned: bool = False
    level: int | None = None
    status: str | None = None  # a TicketStatus value, ALL_OPEN (the default) or ANY_STATUS
    priority: int | None = None
    category: str | None = None
    breached: bool = False
    sort: str = "due"  # due | priority | created | updated


SORTS = ("due", "priority", "created", "updated")
ALL_OPEN = "all_open"  # every status of OPEN_STATUSES (new, open, waiting for the customer, escalated)
ANY_STATUS = "all"


def sla_state(ticket: Ticket, now: datetime) -> dict:
    """The SLA clock that matters now: first response while none, then resolution; breached or not."""
    if ticket.first_response_at is None and ticket.is_open:
        target, due, met_at = "response", ticket.response_due_at, None
    else:
        target, due, met_at = "resolution", ticket.resolution_due_at, ticket.resolved_at
    if met_at is not None:
        return {"target": target, "due": due, "left": None, "breached": met_at > due}
    if not ticket.is_open:
        return {"target": target, "due": due, "left": None, "breached": False}
    left = due - now
    return {"target": target, "due": due, "left": left, "breached": left.total_seconds() < 0}


def breached_clause(now: datetime):
    """SQL condition: an open ticket past its current SLA target."""
    return Ticket.status.in_(OPEN_STATUSES) & (
        (Ticket.first_response_at.is_(None) & (Ticket.response_due_at < now))
        | (Ticket.resolution_due_at < now))


def queue(session: Session, agent: User, filters: QueueFilters, now: datetime | None = None,
          limit: int = 200) -> list[Ticket]:
    """The tickets an agent works, filtered and sorted."""
    _require_agent(agent)
    now = now or utcnow()
    query = select(Ticket)
    if filters.status in (ALL_OPEN, None):
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    elif filters.status != ANY_STATUS:
        query = query.where(Ticket.status == TicketStatus(filters.status))
    if filters.mine:
        query = query.where(Ticket.assignee_id == agent.id)
    if filters.unassigned:
        query = query.where(Ticket.assignee_id.is_(None))
    if filters.level:
        query = query.where(Ticket.level == filters.level)
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.category:
        query = query.where(Ticket.category == filters.category)
    if filters.breached:
        query = query.where(breached_clause(now))
    order = {
        "due": (Ticket.resolution_due_at, Ticket.priority),
        "priority": (Ticket.priority, Ticket.resolution_due_at),
        "created": (Ticket.created_at.desc(),),
        "updated": (Ticket.updated_at.desc(),),
    }[filters.sort if filters.sort in SORTS else "due"]
    return list(session.scalars(query.order_by(*order, Ticket.id).limit(limit)))


def agents(session: Session) -> list[User]:
    """Active agents and admins, for assignment menus."""
    return list(session.scalars(select(User).where(User.active.is_(True),
                                                   or_(*(User.role == r for r in (Role.AGENT_L1, Role.AGENT_L2,
                                                                                  Role.ADMIN))))
                                .order_by(User.name)))
