"""The one way the agent notifications and the password-reset mail write a plain-text e-mail to the outbox
(portal/mailer.py delivers it later, outside the request)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from .domain.models import OutboxMessage
from .mail_threading import new_message_id


def queue_text_mail(session: Session, recipient: str, subject: str, body: str,
                    ticket_id: int | None = None) -> OutboxMessage:
    """Add a plain-text message to the outbox (in the caller's transaction); one about a ticket gets a
    Message-ID of the ticket's thread, so a reply to it finds the ticket."""
    message = OutboxMessage(recipient=recipient, subject=subject, body=body, ticket_id=ticket_id,
                            message_id=new_message_id(ticket_id, current_app.config["MESA_MAIL_FROM"])
                            if ticket_id else "")
    session.add(message)
    return message
