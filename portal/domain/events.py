"""The self-service funnel: what people searched, were shown, opened, and whether it solved their problem.

Event text is scrubbed before it is stored (e-mail addresses, phone numbers, the person's own name): the
reports list questions, never who asked them.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import PortalEvent, User, utcnow
from .privacy import person_names, scrub_text

KINDS = ("search", "suggestion_shown", "article_opened", "solved", "ticket_created")
CHANNELS = ("portal", "email")
# Suggestions are fetched while the person types (debounced by the page). Calls from one browser session
# within this many seconds of the last one, whose text continues the same question, refine that question
# instead of asking a new one.
BURST_SECONDS = 30
# "This solved my problem" counts once per person and article in this time, however often it is posted.
SOLVED_ONCE_DAYS = 30
# Opening the same article again (a reload, back and forth) within this time is one opening.
OPENED_ONCE_MINUTES = 30
# An article the person opened this long before creating a ticket counts as read for that ticket.
READ_BEFORE_TICKET_HOURS = 24


def record_event(session: Session, kind: str, session_id: str, user_id: int | None = None, query: str = "",
                 article_slug: str = "", ticket_id: int | None = None, results: int | None = None,
                 channel: str = "portal") -> PortalEvent:
    """Add one funnel event (a random browser-session id and the user id; the query without personal data);
    ``channel``: "portal", or "email" for the articles an acknowledgement offered and the one that solved."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    event = PortalEvent(kind=kind, session_id=session_id[:40], user_id=user_id,
                        query=scrub_query(session, query, user_id), article_slug=article_slug or "",
                        ticket_id=ticket_id, results=results, channel=channel)
    session.add(event)
    return event


def _person(user_id: int | None, session_id: str):
    """The events of one person: the signed-in user's (on any device), else the browser session's."""
    if user_id is not None:
        return PortalEvent.user_id == user_id
    return PortalEvent.session_id == session_id[:40]


def recorded_since(session: Session, kind: str, session_id: str, user_id: int | None, article_slug: str,
                   since: datetime) -> bool:
    """Whether this person has an event of ``kind`` for the article since ``since``."""
    return session.scalar(select(PortalEvent.id).where(
        PortalEvent.kind == kind, _person(user_id, session_id), PortalEvent.article_slug == article_slug,
        PortalEvent.created_at >= since).limit(1)) is not None


def opened_articles(session: Session, session_id: str, user_id: int | None, slugs: list[str],
                    now: datetime | None = None) -> set[str]:
    """The slugs among ``slugs`` this person opened in the last ``READ_BEFORE_TICKET_HOURS`` hours."""
    if not slugs:
        return set()
    since = (now or utcnow()) - timedelta(hours=READ_BEFORE_TICKET_HOURS)
    return set(session.scalars(select(PortalEvent.article_slug).where(
        PortalEvent.kind == "article_opened", _person(user_id, session_id), PortalEvent.article_slug.in_(slugs),
        PortalEvent.created_at >= since)))


def record_once(session: Session, kind: str, session_id: str, user_id: int | None, article_slug: str,
                within: timedelta, query: str = "", now: datetime | None = None) -> PortalEvent | None:
    """Record a 'solved' or 'article_opened' event unless the same person has one for the article within
    ``within`` (None then): posting "solved" twenty times, or reloading a page, counts once in the funnel."""
    now = now or utcnow()
    if recorded_since(session, kind, session_id, user_id, article_slug, now - within):
        return None
    event = record_event(session, kind, session_id, user_id, query=query, article_slug=article_slug)
    event.created_at = now
    return event


def scrub_query(session: Session, query: str, user_id: int | None) -> str:
    """A question as the reports may keep it: no e-mail address, phone number or name of the person."""
    user = session.get(User, user_id) if user_id is not None else None
    return scrub_text(query or "", person_names(user))[:500]


def record_question(session: Session, session_id: str, user_id: int | None, query: str, results: int,
                    answered: bool, confidence: float | None, refining: bool = False,
                    now: datetime | None = None) -> PortalEvent:
    """One 'search' event per question a person settled on, with whether the KB answered it.

    ``refining``: the call is one of a burst made while typing (suggestions); if the same browser session
    asked a question that this text continues less than ``BURST_SECONDS`` ago, that question is updated to
    this text instead of a new one being counted.
    """
    now = now or utcnow()
    scrubbed = scrub_query(session, query, user_id)
    event = _question_being_refined(session, session_id, scrubbed, now) if refining else None
    if event is None:
        event = record_event(session, "search", session_id, user_id, query=scrubbed, results=results)
        event.created_at = now
    else:
        event.query, event.results = scrubbed, results
    event.answered, event.confidence, event.settled_at = answered, confidence, now
    return event


def _question_being_refined(session: Session, session_id: str, query: str, now: datetime) -> PortalEvent | None:
    last = session.scalar(select(PortalEvent).where(
        PortalEvent.kind == "search", PortalEvent.session_id == session_id[:40],
        PortalEvent.settled_at >= now - timedelta(seconds=BURST_SECONDS)).order_by(PortalEvent.id.desc()).limit(1))
    return last if last is not None and same_question(last.query, query) else None


def same_question(before: str, after: str) -> bool:
    """Whether ``after`` continues the text of ``before`` (typed on, corrected near the end, or cut back):
    they share at least half of the shorter one from the start."""
    a, b = before.casefold().strip(), after.casefold().strip()
    if not a or not b:
        return False
    shared = len(os.path.commonprefix([a, b]))
    return shared >= len(min(a, b, key=len)) / 2


def record_suggestions(session: Session, session_id: str, user_id: int | None, query: str,
                       slugs: list[str], question: PortalEvent | None = None) -> None:
    """One 'suggestion_shown' event per suggested article; an article already shown for the same question
    (an earlier call of the burst) is not counted again."""
    already: set[str] = set()
    if question is not None and question.id is not None:
        already = set(session.scalars(select(PortalEvent.article_slug).where(
            PortalEvent.kind == "suggestion_shown", PortalEvent.session_id == session_id[:40],
            PortalEvent.created_at >= question.created_at, PortalEvent.article_slug.in_(slugs))))
    for slug in slugs:
        if slug not in already:
            record_event(session, "suggestion_shown", session_id, user_id, query=query, article_slug=slug)
