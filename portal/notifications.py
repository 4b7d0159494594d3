"""E-mail notifications to requesters: written to the outbox in the same transaction as the change,
then sent through SMTP when one is configured. Internal notes are never e-mailed."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .domain.models import OutboxMessage, Ticket, TicketEvent, utcnow
from .i18n import status_label


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
                                    ticket_id=ticket.id)
            session.add(message)
            messages.append(message)
    return messages


def _email(config, message: OutboxMessage) -> EmailMessage:
    """The outbox message as an e-mail; ValueError when a header cannot hold it (a line break, say)."""
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = config["MESA_MAIL_FROM"], message.recipient, message.subject
    email.set_content(message.body)
    return email


def _send_pending(session: Session, config) -> int:
    pending = list(session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None),
                                                               OutboxMessage.error == "")
                                   .order_by(OutboxMessage.id)))
    if not pending:
        return 0
    sent = 0
    with smtplib.SMTP(config["MESA_SMTP_HOST"], config["MESA_SMTP_PORT"], timeout=10) as smtp:
        if config["MESA_SMTP_STARTTLS"]:
            smtp.starttls()
        if config["MESA_SMTP_USER"]:
            smtp.login(config["MESA_SMTP_USER"], config["MESA_SMTP_PASSWORD"])
        for message in pending:
            try:
                smtp.send_message(_email(config, message))
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError):
                raise  # the connection failed, not this message: it stays pending for the next delivery
            except Exception as exc:  # this message can never be sent as it is; the others still go
                message.error = f"{type(exc).__name__}: {exc}"[:500]
            else:
                message.sent_at = utcnow()
                sent += 1
            session.commit()
    return sent


def deliver_pending(session: Session) -> int:
    """Send unsent outbox messages through SMTP if configured. A message that cannot be sent is marked failed
    with the reason; nothing is raised, so delivery never fails the request that caused the messages."""
    config = current_app.config
    if not config["MESA_SMTP_HOST"]:
        return 0
    try:
        return _send_pending(session, config)
    except OSError as exc:  # smtplib's errors are OSErrors too
        current_app.logger.warning("SMTP delivery failed, messages stay in the outbox: %s", exc)
    except Exception:
        current_app.logger.exception("e-mail delivery failed, messages stay in the outbox")
    try:
        session.rollback()
    except Exception:
        current_app.logger.exception("rollback after failed delivery failed")
    return 0
