"""E-mail notifications to requesters, written to the outbox in the same transaction as the change that causes
them; portal/mailer.py sends them later, outside the request. Internal notes are never e-mailed.

Each mail is composed once (portal/mail_compose.py) and sent as plain text and sanitised HTML, in the
ticket's language, with the ticket number in the subject. The acknowledgement of a new ticket offers the
articles that confidently answer it, each with a one-click "This solved my problem" link; the mail of a
resolved ticket has one-click rating links (portal/mail_links.py).
"""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy.orm import Session

from .agent_notifications import notify_agents
from .domain.models import OutboxMessage, Ticket, TicketEvent
from .i18n import status_label
from .mail_articles import articles_answering, record_offered
from .mail_compose import Articles, Choices, Link, MarkdownText, Mail, OfferedArticle, Paragraph, render
from .mail_links import RATINGS, portal_url, rating_link, solved_link
from .mail_threading import new_message_id


def ticket_url(ticket: Ticket) -> str:
    """The ticket's address for e-mails."""
    return portal_url(f"/tickets/{ticket.id}")


def rating_label(rating: int) -> str:
    """The text of one rating link."""
    labels = {5: _("5 – very good"), 4: _("4 – good"), 3: _("3 – fair"), 2: _("2 – poor"), 1: _("1 – very bad")}
    return labels[rating]


def _acknowledgement(session: Session, ticket: Ticket) -> Mail:
    """The mail confirming a new ticket, with the articles that may solve it at once."""
    hours = current_app.extensions["mesa_sla"].targets[ticket.priority][0].total_seconds() / 3600
    mail = Mail(_("[%(number)s] We received your request: %(subject)s", number=ticket.number,
                  subject=ticket.subject), _("Hello %(name)s,", name=ticket.requester.name), [
        Paragraph(_("We have registered your ticket %(number)s. You can expect a first answer within "
                    "%(hours)s hours.", number=ticket.number, hours=f"{hours:g}"))])
    hits = articles_answering(ticket)
    if hits:
        mail.blocks.append(Articles(
            _("Meanwhile, these articles may already solve it. If one does, tell us with one click and the "
              "ticket is closed:"),
            tuple(OfferedArticle(hit.title, portal_url(f"/articles/{hit.slug}"), solved_link(ticket, hit.slug))
                  for hit in hits), _("This solved my problem")))
        record_offered(session, ticket, hits)
    mail.blocks.append(Link(_("Follow it here"), ticket_url(ticket)))
    return mail


def _resolved(ticket: Ticket) -> Mail:
    """The mail of a resolved ticket: the solution and one link per rating."""
    return Mail(_("[%(number)s] Resolved: %(subject)s", number=ticket.number, subject=ticket.subject),
                _("Hello %(name)s,", name=ticket.requester.name), [
        Paragraph(_("Your ticket %(number)s has been resolved:", number=ticket.number)),
        MarkdownText(ticket.solution),
        Choices(_("How did we do? Rate it with one click:"),
                tuple(Link(rating_label(rating), rating_link(ticket, rating)) for rating in RATINGS)),
        Paragraph(_("If the problem is not solved, reply on the ticket page and it will be reopened.")),
        Link(_("Your ticket"), ticket_url(ticket))])


def _compose(session: Session, ticket: Ticket, event: TicketEvent) -> Mail | None:
    """The mail for a public event, in the ticket's language; None when nothing is sent."""
    greeting = _("Hello %(name)s,", name=ticket.requester.name)
    if event.kind == "created":
        return _acknowledgement(session, ticket)
    if event.kind == "reply" and event.actor is not None and event.actor.is_agent:
        return Mail(_("[%(number)s] New reply: %(subject)s", number=ticket.number, subject=ticket.subject),
                    greeting, [
            Paragraph(_("%(agent)s replied to your ticket %(number)s:", agent=event.actor.name,
                        number=ticket.number)),
            MarkdownText(event.body),
            Link(_("Answer here"), ticket_url(ticket))])
    if event.kind == "status" and event.data.get("automatic") and event.data["to"] == "closed":
        return Mail(_("[%(number)s] Closed: %(subject)s", number=ticket.number, subject=ticket.subject), greeting, [
            Paragraph(_("Your ticket %(number)s was resolved %(days)s days ago and has not been reopened, so it "
                        "is now closed.", number=ticket.number, days=event.data.get("after_days", ""))),
            Link(_("If the problem comes back, ask for help again"), portal_url("/help"))])
    if event.kind == "status":
        return Mail(_("[%(number)s] Status: %(status)s", number=ticket.number, status=status_label(event.data["to"])),
                    greeting, [
            Paragraph(_("Your ticket %(number)s is now: %(status)s.", number=ticket.number,
                        status=status_label(event.data["to"]))),
            Link(_("Your ticket"), ticket_url(ticket))])
    if event.kind == "resolved":
        return _resolved(ticket)
    return None


def notify_requester(session: Session, ticket: Ticket, events: list[TicketEvent]) -> list[OutboxMessage]:
    """Queue e-mails (plain text and HTML) for the public events the requester did not cause themselves."""
    messages = []
    with force_locale(ticket.lang):
        for event in events:
            if not event.public or (event.actor_id == ticket.requester_id and event.kind != "created"):
                continue
            mail = _compose(session, ticket, event)
            if mail is None:
                continue
            text, html = render(mail, ticket.lang)
            message = OutboxMessage(recipient=ticket.requester.email, subject=mail.subject, body=text,
                                    html_body=html, ticket_id=ticket.id,
                                    message_id=new_message_id(ticket.id, current_app.config["MESA_MAIL_FROM"]))
            session.add(message)
            messages.append(message)
    notify_agents(session, ticket, events)  # the agents' own e-mails (portal/agent_notifications.py)
    return messages
