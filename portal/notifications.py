"""E-mail notifications to requesters, written to the outbox in the same transaction as the change that causes
them; portal/mailer.py sends them later, outside the request. Internal notes are never e-mailed."""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy.orm import Session

from .agent_notifications import notify_agents
from .domain.models import OutboxMessage, Ticket, TicketEvent
from .i18n import status_label
from .mail_threading import new_message_id


def ticket_url(ticket: Ticket) -> str:
    """The ticket's address for e-mails."""
    return f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}/tickets/{ticket.id}"


def _compose(ticket: Ticket, event: TicketEvent) -> tuple[str, str] | None:
    """Subject and body for a public event, in the ticket's language; None when nothing is sent."""
    name = ticket.requester.name
    if event.kind == "created":
        hours = current_app.extensions["mesa_sla"].targets[ticket.priority][0].total_seconds() / 3600
        return (_("[%(number)s] We received your request: %(subject)s", number=ticket.number, subject=ticket.subject),
                _("Hello %(name)s,\n\nWe have registered your ticket %(number)s. You can expect a first answer "
                  "within %(hours)s hours.\nFollow it here: %(url)s\n", name=name, number=ticket.number,
                  hours=f"{hours:g}", url=ticket_url(ticket)))
    if event.kind == "reply" and event.actor is not None and event.actor.is_agent:
        return (_("[%(number)s] New reply: %(subject)s", number=ticket.number, subject=ticket.subject),
                _("Hello %(name)s,\n\n%(agent)s replied to your ticket %(number)s:\n\n%(body)s\n\n"
                  "Answer here: %(url)s\n", name=name, agent=event.actor.name, number=ticket.number,
                  body=event.body, url=ticket_url(ticket)))
    if event.kind == "status" and event.data.get("automatic") and event.data["to"] == "closed":
        return (_("[%(number)s] Closed: %(subject)s", number=ticket.number, subject=ticket.subject),
                _("Hello %(name)s,\n\nYour ticket %(number)s was resolved %(days)s days ago and has not been "
                  "reopened, so it is now closed.\nIf the problem comes back, ask for help again: %(url)s\n",
                  name=name, number=ticket.number, days=event.data.get("after_days", ""),
                  url=f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}/help"))
    if event.kind == "status":
        return (_("[%(number)s] Status: %(status)s", number=ticket.number, status=status_label(event.data["to"])),
                _("Hello %(name)s,\n\nYour ticket %(number)s is now: %(status)s.\n%(url)s\n", name=name,
                  number=ticket.number, status=status_label(event.data["to"]), url=ticket_url(ticket)))
    if event.kind == "resolved":
        return (_("[%(number)s] Resolved: %(subject)s", number=ticket.number, subject=ticket.subject),
                _("Hello %(name)s,\n\nYour ticket %(number)s has been resolved:\n\n%(solution)s\n\n"
                  "How did we do? Rate it with one click: %(url)s#survey\nIf the problem is not solved, "
                  "reply on the ticket page and it will be reopened.\n", name=name, number=ticket.number,
                  solution=ticket.solution, url=ticket_url(ticket)))
    return None


def notify_requester(session: Session, ticket: Ticket, events: list[TicketEvent]) -> list[OutboxMessage]:
    """Queue e-mails for the public events the requester did not cause themselves."""
    messages = []
    with force_locale(ticket.lang):
        for event in events:
            if not event.public or (event.actor_id == ticket.requester_id and event.kind != "created"):
                continue
            composed = _compose(ticket, event)
            if composed is None:
                continue
            message = OutboxMessage(recipient=ticket.requester.email, subject=composed[0], body=composed[1],
                                    ticket_id=ticket.id,
                                    message_id=new_message_id(ticket.id, current_app.config["MESA_MAIL_FROM"]))
            session.add(message)
            messages.append(message)
    notify_agents(session, ticket, events)  # the agents' own e-mails (portal/agent_notifications.py)
    return messages
