"""The one way the account mails (address confirmation, password reset) and the agent notifications write an
e-mail to the outbox: written as plain text, sent as text + HTML (portal/mail_compose.py draws the HTML part in
the layout of every mail); portal/mailer.py delivers it later, outside the request."""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from sqlalchemy.orm import Session

from .domain.models import OutboxMessage
from .mail_compose import text_mail_html
from .mail_threading import new_message_id


def queue_text_mail(session: Session, recipient: str, subject: str, body: str, lang: str,
                    ticket_id: int | None = None) -> OutboxMessage:
    """Add a message written in ``lang`` to the outbox (in the caller's transaction); one about a ticket gets a
    Message-ID of the ticket's thread, so a reply to it finds the ticket."""
    with force_locale(lang):
        html = text_mail_html(subject, body, lang)
    message = OutboxMessage(recipient=recipient, subject=subject, body=body, html_body=html, ticket_id=ticket_id,
                            message_id=new_message_id(ticket_id, current_app.config["MESA_MAIL_FROM"])
                            if ticket_id else "")
    session.add(message)
    return message
