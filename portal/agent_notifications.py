"""E-mail notifications to agents: a ticket assigned or escalated to them, the customer replied, a ticket
reopened, an SLA target about to be missed (portal/sla_warnings.py finds those).

They are written to the outbox in the same transaction as the change (portal/notifications.py calls
``notify_agents`` with the events it is given), in the agent's language, and may quote internal content
(agents see internal notes). Nobody is told of what they did themselves, and each agent can turn each kind
off on their account page (portal/domain/agent_mail_preferences.py).

Who is told: the ticket's assignee; a ticket without one goes to its responsible agents, the active agents
of the ticket's level in the ticket's team, or every active agent of that level when the team has none (or
the ticket has no team).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .domain.agent_mail_preferences import preferences_of
from .domain.models import AGENT_ROLES, OutboxMessage, Role, Ticket, TicketEvent, User
from .i18n import PRIORITY_LABELS, status_label, ui_languages
from .text_mail import queue_text_mail

REOPENED_FROM = ("resolved", "closed")


@dataclass
class Notice:
    """One notification to send: its kind, the agent, the event that caused it (None for an SLA warning)
    and what it needs besides (the customer's reply folded into a reopening, an SLA target)."""

    kind: str
    agent: User
    event: TicketEvent | None
    reply: TicketEvent | None = None
    target: str = ""
    share: int = 0


def portal_url(path: str) -> str:
    """An address on the portal, for links in e-mails."""
    return f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}{path}"


def mail_language(session: Session, agent: User) -> str:
    """The language an agent's notifications are written in: their choice, else the first UI language."""
    offered = ui_languages()
    chosen = preferences_of(session, agent).language
    return chosen if chosen in offered else (offered[0] if offered else "en")


def _level_roles(level: int) -> tuple[Role, ...]:
    """The roles that work at a support level (as automatic assignment picks them)."""
    return (Role.AGENT_L1,) if level == 1 else (Role.AGENT_L2, Role.ADMIN)


def responsible_agents(session: Session, ticket: Ticket) -> list[User]:
    """Who answers for the ticket now: its assignee; without one, the active agents of its level in its
    team, else every active agent of its level (an assignee whose account was disabled counts as none)."""
    if ticket.assignee is not None and ticket.assignee.active:
        return [ticket.assignee]
    at_level = list(session.scalars(select(User).where(User.active.is_(True),
                                                       User.role.in_(_level_roles(ticket.level)))
                                    .order_by(User.id)))
    in_team = [agent for agent in at_level if ticket.team_id is not None and agent.team_id == ticket.team_id]
    return in_team or at_level


def _reopens(event: TicketEvent) -> bool:
    """Whether a status change brings a resolved or closed ticket back to open."""
    data = event.data or {}
    return event.kind == "status" and data.get("to") == "open" and data.get("from") in REOPENED_FROM


def _candidates(session: Session, ticket: Ticket, events: list[TicketEvent]) -> list[Notice]:
    """Every (kind, agent, event) the events call for, before preferences and the actor are considered."""
    notices = []
    for event in events:
        if event.kind == "assigned" and (event.data or {}).get("to") and ticket.assignee is not None:
            notices.append(Notice("assigned", ticket.assignee, event))
        elif event.kind == "escalated":
            notices += [Notice("escalated", agent, event) for agent in responsible_agents(session, ticket)]
        elif event.kind == "reply" and event.public and event.actor is not None and not event.actor.is_agent:
            notices += [Notice("customer_replied", agent, event) for agent in responsible_agents(session, ticket)]
        elif _reopens(event):
            notices += [Notice("reopened", agent, event) for agent in responsible_agents(session, ticket)]
    return notices


def _wanted(session: Session, notices: list[Notice]) -> list[Notice]:
    """The notices for active agents who did not cause them and did not turn their kind off, once per agent
    and kind; a customer's reply that reopened the ticket is told in the reopening's mail."""
    kept: dict[tuple[int, str], Notice] = {}
    for notice in notices:
        agent = notice.agent
        if not agent.active or agent.role not in AGENT_ROLES:
            continue
        if notice.event is not None and notice.event.actor_id == agent.id:
            continue
        if not getattr(preferences_of(session, agent), notice.kind):
            continue
        kept.setdefault((agent.id, notice.kind), notice)
    for (agent_id, kind), notice in list(kept.items()):
        if kind == "reopened" and (agent_id, "customer_replied") in kept:
            notice.reply = kept.pop((agent_id, "customer_replied")).event
    return list(kept.values())


def notify_agents(session: Session, ticket: Ticket, events: list[TicketEvent]) -> list[OutboxMessage]:
    """Queue the agents' e-mails for these new events of the ticket (called with the requester's mails)."""
    return [send(session, ticket, notice) for notice in _wanted(session, _candidates(session, ticket, events))]


def send(session: Session, ticket: Ticket, notice: Notice) -> OutboxMessage:
    """Write one notification to the outbox, in the agent's language."""
    lang = mail_language(session, notice.agent)
    with force_locale(lang):
        subject, text = _compose(ticket, notice)
        body = "\n\n".join([_("Hello %(name)s,", name=notice.agent.name), text, _summary(ticket),
                            _("Open the ticket: %(url)s", url=portal_url(f"/tickets/{ticket.id}")),
                            "-- \n" + _("You can choose which notifications you get on your account page: "
                                        "%(url)s", url=portal_url("/account"))]) + "\n"
    return queue_text_mail(session, notice.agent.email, subject, body, lang, ticket_id=ticket.id)


def _who(event: TicketEvent | None) -> str:
    """Who caused an event ("Mesa" for an automatic change)."""
    return event.actor.name if event is not None and event.actor is not None else "Mesa"


def _summary(ticket: Ticket) -> str:
    """The lines every notification ends with: the ticket's subject, requester, priority, status, level."""
    return "\n".join([
        _("Subject: %(subject)s", subject=ticket.subject),
        _("Requester: %(name)s <%(email)s>", name=ticket.requester.name, email=ticket.requester.email),
        _("Priority: %(priority)s", priority=str(PRIORITY_LABELS.get(ticket.priority, ticket.priority))),
        _("Status: %(status)s · level L%(level)s", status=status_label(ticket.status), level=ticket.level),
    ])


def _compose(ticket: Ticket, notice: Notice) -> tuple[str, str]:
    """The subject and the main paragraph of one notification."""
    number, subject, event = ticket.number, ticket.subject, notice.event
    if notice.kind == "assigned":
        text = (_("Ticket %(number)s was assigned to you automatically.", number=number)
                if event.actor is None else
                _("%(who)s assigned ticket %(number)s to you.", who=_who(event), number=number))
        return (_("[%(number)s] Assigned to you: %(subject)s", number=number, subject=subject),
                text + "\n\n" + ticket.description)
    if notice.kind == "escalated":
        text = (_("Ticket %(number)s was escalated to level L%(level)s automatically: it used %(share)s%% of "
                  "its resolution time.", number=number, level=ticket.level, share=(event.data or {}).get("share"))
                if event.actor is None else
                _("%(who)s escalated ticket %(number)s to level L%(level)s.", who=_who(event), number=number,
                  level=ticket.level))
        if event.body:
            text += "\n" + _("Reason: %(reason)s", reason=event.body)
        text += "\n" + (_("It is assigned to you.") if ticket.assignee_id == notice.agent.id
                        else _("Nobody is assigned to it: take it from the queue."))
        return _("[%(number)s] Escalated: %(subject)s", number=number, subject=subject), text
    if notice.kind == "customer_replied":
        return (_("[%(number)s] The customer replied: %(subject)s", number=number, subject=subject),
                _("%(who)s replied on ticket %(number)s:", who=_who(event), number=number) + "\n\n" + event.body)
    if notice.kind == "reopened":
        text = _("%(who)s reopened ticket %(number)s.", who=_who(event), number=number)
        if notice.reply is not None:
            text += "\n\n" + _("Their reply:") + "\n\n" + notice.reply.body
        return _("[%(number)s] Reopened: %(subject)s", number=number, subject=subject), text
    return _compose_sla_warning(ticket, notice)


def _compose_sla_warning(ticket: Ticket, notice: Notice) -> tuple[str, str]:
    """The subject and paragraph of a warning that an SLA target is about to be missed."""
    if notice.target == "response":
        due = ticket.response_due_at.strftime("%Y-%m-%d %H:%M UTC")
        return (_("[%(number)s] First response due soon: %(subject)s", number=ticket.number,
                  subject=ticket.subject),
                _("Ticket %(number)s has used %(share)s%% of its time to a first response, which is due at "
                  "%(due)s. Answer the customer before then.", number=ticket.number, share=notice.share, due=due))
    due = ticket.resolution_due_at.strftime("%Y-%m-%d %H:%M UTC")
    return (_("[%(number)s] Resolution due soon: %(subject)s", number=ticket.number, subject=ticket.subject),
            _("Ticket %(number)s has used %(share)s%% of its resolution time; it must be resolved by %(due)s.",
              number=ticket.number, share=notice.share, due=due))
