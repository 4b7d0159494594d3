"""The FAQ to write: the questions no article answered over a period (portal questions below the answer
threshold, and the subjects of tickets with no article suggested, offered or cited), grouped by meaning, each
group with its size, trend, languages, examples and tickets, and the draft article it starts.

Grouping is indexer/clustering.py over vectors the caller passes in (portal/gap_service.py embeds them);
these functions only read rows and build values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from indexer import detect_language
from indexer.clustering import cluster_vectors

from .knowledge import SECTION_TITLES, ArticleDraft, scrub_personal_data
from .models import ArticleTicketLink, PortalEvent, Ticket, TicketStatus, TicketSuggestion

MAX_QUESTIONS = 5000  # a period's newest unanswered questions grouped at most
EXAMPLES = 5
DRAFT_EXAMPLES = 8


@dataclass(frozen=True)
class Question:
    """One unanswered question: a portal question (``event_id``) or a ticket's subject (``ticket_id``)."""

    text: str
    lang: str
    asked_at: datetime
    event_id: int | None = None
    ticket_id: int | None = None
    solution: str = ""  # for a resolved ticket grouped by how it was solved


@dataclass
class Gap:
    """A group of questions about one topic no article covers, the most central question first."""

    questions: list[Question]
    first_half: int = 0  # asked in the first half of the period
    second_half: int = 0
    languages: Counter = field(default_factory=Counter)

    @property
    def size(self) -> int:
        return len(self.questions)

    @property
    def title(self) -> str:
        return self.questions[0].text

    @property
    def examples(self) -> list[str]:
        """Up to EXAMPLES distinct texts, the most central first."""
        return list(dict.fromkeys(q.text for q in self.questions))[:EXAMPLES]

    @property
    def ticket_ids(self) -> list[int]:
        return sorted({q.ticket_id for q in self.questions if q.ticket_id is not None})

    @property
    def event_ids(self) -> list[int]:
        return [q.event_id for q in self.questions if q.event_id is not None]

    @property
    def trend(self) -> str:
        """'rising', 'falling' or 'steady': the second half of the period against the first."""
        if self.second_half >= 1.5 * max(self.first_half, 1):
            return "rising"
        if self.first_half >= 1.5 * max(self.second_half, 1):
            return "falling"
        return "steady"


def unanswered_questions(session: Session, since: datetime, until: datetime,
                         limit: int = MAX_QUESTIONS) -> list[Question]:
    """The period's portal questions below the answer threshold (or with no result, before confidence was
    kept) and the subjects of its tickets opened with no article suggested and none cited since; newest first."""
    events = session.execute(
        select(PortalEvent.id, PortalEvent.query, PortalEvent.created_at, PortalEvent.ticket_id).where(
            PortalEvent.kind == "search", PortalEvent.query != "", PortalEvent.created_at >= since,
            PortalEvent.created_at <= until,
            PortalEvent.answered.is_(False) | (PortalEvent.answered.is_(None) & (PortalEvent.results == 0)))
        .order_by(PortalEvent.created_at.desc()).limit(limit))
    questions = [Question(text, detect_language(text), at, event_id=event_id) for event_id, text, at, _ in events]
    # No article suggested before the ticket (the portal's suggestions), none offered after (the acknowledgement
    # mail's), none cited since.
    no_article = (~exists().where(TicketSuggestion.ticket_id == Ticket.id)
                  & ~exists().where(PortalEvent.ticket_id == Ticket.id, PortalEvent.kind == "suggestion_shown")
                  & ~exists().where(ArticleTicketLink.ticket_id == Ticket.id))
    tickets = session.execute(select(Ticket.id, Ticket.subject, Ticket.lang, Ticket.created_at).where(
        Ticket.created_at >= since, Ticket.created_at <= until, no_article)
        .order_by(Ticket.created_at.desc()).limit(limit))
    questions += [Question(subject, detect_language(subject, default=lang), at, ticket_id=ticket_id)
                  for ticket_id, subject, lang, at in tickets]
    questions.sort(key=lambda q: q.asked_at, reverse=True)
    return questions[:limit]


def solved_without_article(session: Session, since: datetime, until: datetime,
                           limit: int = MAX_QUESTIONS) -> list[Question]:
    """The period's resolved tickets that no article came from or was cited on: the solutions to write down."""
    no_article = ~exists().where(ArticleTicketLink.ticket_id == Ticket.id)
    rows = session.execute(select(Ticket.id, Ticket.subject, Ticket.lang, Ticket.resolved_at, Ticket.solution).where(
        Ticket.resolved_at >= since, Ticket.resolved_at <= until, Ticket.solution != "", no_article,
        Ticket.status.in_((TicketStatus.RESOLVED, TicketStatus.CLOSED)))
        .order_by(Ticket.resolved_at.desc()).limit(limit))
    return [Question(subject, detect_language(f"{subject} {solution}", default=lang), at, ticket_id=ticket_id,
                     solution=solution) for ticket_id, subject, lang, at, solution in rows]


def group_questions(questions: list[Question], vectors: np.ndarray, max_distance: float, since: datetime,
                    until: datetime) -> list[Gap]:
    """The questions grouped by meaning (``vectors``: one unit row per question), biggest group first."""
    middle = since + (until - since) / 2
    gaps = []
    for cluster in cluster_vectors(vectors, max_distance):
        members = [questions[i] for i in cluster.members]
        gap = Gap(members, languages=Counter(q.lang for q in members))
        gap.first_half = sum(1 for q in members if q.asked_at < middle)
        gap.second_half = gap.size - gap.first_half
        gaps.append(gap)
    return gaps


def questions_by_id(session: Session, event_ids: list[int], ticket_ids: list[int]) -> list[Question]:
    """The unanswered questions a draft is started from, read back by their ids (anything else is ignored)."""
    questions = [Question(text, detect_language(text), at, event_id=event_id) for event_id, text, at in
                 session.execute(select(PortalEvent.id, PortalEvent.query, PortalEvent.created_at).where(
                     PortalEvent.id.in_(event_ids), PortalEvent.kind == "search", PortalEvent.query != ""))]
    questions += [Question(subject, detect_language(subject, default=lang), at, ticket_id=ticket_id)
                  for ticket_id, subject, lang, at in
                  session.execute(select(Ticket.id, Ticket.subject, Ticket.lang, Ticket.created_at)
                                  .where(Ticket.id.in_(ticket_ids)))]
    order = {("e", i): n for n, i in enumerate(event_ids)} | {("t", i): n + len(event_ids)
                                                               for n, i in enumerate(ticket_ids)}
    return sorted(questions, key=lambda q: order[("e", q.event_id) if q.event_id is not None else ("t", q.ticket_id)])


def draft_from_gap(session: Session, questions: list[Question]) -> ArticleDraft:
    """A draft article for a group: its main question as the title, how people asked it, and the solutions of
    the group's resolved tickets (personal data removed), in the group's most common language."""
    lang = Counter(q.lang for q in questions).most_common(1)[0][0] if questions else "es"
    problem_title, solution_title = SECTION_TITLES[lang]
    asked = list(dict.fromkeys(q.text for q in questions))[:DRAFT_EXAMPLES]
    tickets = [t for t in session.scalars(select(Ticket).where(Ticket.id.in_(
        [q.ticket_id for q in questions if q.ticket_id is not None]))) if
        t.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and t.solution.strip()]
    intro = {"es": "Así lo preguntan las personas:", "en": "How people ask about it:"}[lang]
    missing = {"es": "Ningún ticket de este grupo está resuelto todavía: escribe aquí los pasos.",
               "en": "No ticket of this group is resolved yet: write the steps here."}[lang]
    solutions = list(dict.fromkeys(scrub_personal_data(t.solution.strip(), t) for t in tickets))
    body = (f"## {problem_title}\n\n{intro}\n\n" + "\n".join(f"- {text}" for text in asked) +
            f"\n\n## {solution_title}\n\n" + ("\n\n".join(solutions) if solutions else missing) + "\n")
    category = Counter(t.category for t in tickets).most_common(1)[0][0] if tickets else "general"
    title = asked[0][:1].upper() + asked[0][1:] if asked else ""
    return ArticleDraft(title=title[:300], body=body, lang=lang, category=category,
                        tags=[category] if category != "general" else [])


def period(days: int, now: datetime) -> tuple[datetime, datetime]:
    """The period of the last ``days`` days ending now."""
    return now - timedelta(days=days), now
