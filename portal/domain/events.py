"""The self-service funnel: what people searched, were shown, opened, and whether it solved their problem."""

from __future__ import annotations

from sqlalchemy.orm import Session

from .models import PortalEvent

KINDS = ("search", "suggestion_shown", "article_opened", "solved", "ticket_created")


def record_event(session: Session, kind: str, session_id: str, user_id: int | None = None, query: str = "",
                 article_slug: str = "", ticket_id: int | None = None, results: int | None = None) -> PortalEvent:
    """Add one funnel event (a random browser-session id and the user id; no other personal data)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    event = PortalEvent(kind=kind, session_id=session_id[:40], user_id=user_id, query=(query or "")[:500],
                        article_slug=article_slug or "", ticket_id=ticket_id, results=results)
    session.add(event)
    return event


def record_suggestions(session: Session, session_id: str, user_id: int | None, query: str,
                       slugs: list[str]) -> None:
    """One 'suggestion_shown' event per suggested article."""
    for slug in slugs:
        record_event(session, "suggestion_shown", session_id, user_id, query=query, article_slug=slug)
