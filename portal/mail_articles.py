"""The articles the acknowledgement of a new ticket offers: those the knowledge base confidently answers the
ticket's subject and description with, by the same search and answer threshold as the ask-for-help form
(none when nothing is confident enough, or search is down: the mail goes out without them). Each offered
article is recorded in the funnel as shown by e-mail."""

from __future__ import annotations

import logging

import indexer
from sqlalchemy.orm import Session

from .domain import events
from .domain.models import Ticket
from .search import SearchUnavailable, get_search
from .suggestions import MAX_SUGGESTIONS, suggestion_query

MAIL_ARTICLES = 3  # at most this many in one mail
log = logging.getLogger(__name__)


def articles_answering(ticket: Ticket) -> list[indexer.SearchHit]:
    """Up to MAIL_ARTICLES public articles that confidently answer the ticket (best first), leaving out those
    the portal showed before the ticket was opened (they did not help)."""
    query = suggestion_query(ticket.subject, ticket.description)
    if not query:
        return []
    try:
        search = get_search()
        hits = search.search(query, MAX_SUGGESTIONS, None, query_lang=ticket.lang)
        tried = {suggestion.article_slug for suggestion in ticket.suggestions}
        return [hit for hit in search.answers(hits) if hit.slug not in tried][:MAIL_ARTICLES]
    except SearchUnavailable as exc:  # the acknowledgement goes out anyway, without articles
        log.warning("search unavailable, ticket %s acknowledged without articles: %s", ticket.id, exc)
        return []


def mail_session_id(ticket: Ticket) -> str:
    """The funnel's session id for a ticket's mails (there is no browser): one per ticket."""
    return f"mail-{ticket.id}"


def record_offered(session: Session, ticket: Ticket, hits: list[indexer.SearchHit]) -> None:
    """One 'suggestion_shown' event by e-mail per article the acknowledgement offers."""
    for hit in hits:
        events.record_event(session, "suggestion_shown", mail_session_id(ticket), ticket.requester_id,
                            query=ticket.subject, article_slug=hit.slug, ticket_id=ticket.id, channel="email")


def record_solved(session: Session, ticket: Ticket, article_slug: str) -> None:
    """The e-mail deflection: the article a link in the acknowledgement said solved the ticket."""
    events.record_event(session, "solved", mail_session_id(ticket), ticket.requester_id, query=ticket.subject,
                        article_slug=article_slug, ticket_id=ticket.id, channel="email")
