"""Similar resolved tickets for the agent's ticket page: the few solved tickets closest in meaning to this one,
with their solutions, so L1 can solve a known problem before an article exists.

This ticket (subject + description) and each candidate (subject + solution) are embedded with the search's
own model (the FAQ-to-write's per-process cache, portal/gap_service.py) and compared by cosine. Candidates
are the most recent ``CANDIDATES`` resolved or closed tickets that have a solution, in any language, without
this ticket. Only those at or above the backend's threshold are shown (``SIMILARITY_THRESHOLDS``, chosen by
`bench/similar_tickets.py` on the demo data's problems, see docs/measurements.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .domain.models import Ticket, TicketStatus
from .gap_service import QuestionVectors

CANDIDATES = 2000  # the most recent solved tickets compared (their vectors stay in the per-process cache)
SHOWN = 5  # similar tickets listed at most
SOLUTION_CHARS = 240  # a solution is shortened to about this many characters on the page
# Cosine similarity a solved ticket must reach to be listed, per embedder backend (bench/similar_tickets.py).
SIMILARITY_THRESHOLDS = {"use": 0.44, "e5": 0.89, "fake": 0.37}
DEFAULT_THRESHOLD = 0.6  # a backend not measured (sentence-transformers models)


@dataclass(frozen=True)
class SimilarTicket:
    """A solved ticket like this one, as the page lists it."""

    id: int
    subject: str
    solution: str  # shortened
    lang: str
    status: str
    solved_at: datetime | None
    similarity: float

    @property
    def number(self) -> str:
        """The number the customer quotes (as Ticket.number)."""
        return f"#{self.id}"


def problem_text(subject: str, description: str) -> str:
    """What is compared of the ticket being worked: its subject and description."""
    return f"{subject}. {description}"[:2000]


def solved_text(subject: str, solution: str) -> str:
    """What is compared of a solved ticket: its subject and solution."""
    return f"{subject}. {solution}"[:2000]


def threshold_for(backend: str) -> float:
    """The similarity threshold chosen for an embedder backend."""
    return SIMILARITY_THRESHOLDS.get(backend, DEFAULT_THRESHOLD)


def shorten(text: str, limit: int = SOLUTION_CHARS) -> str:
    """The text on one line, cut at a word boundary near ``limit`` with an ellipsis when longer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(".,;:") + "…"


def rank_by_cosine(query: np.ndarray, candidates: np.ndarray, threshold: float, k: int) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` candidate rows most similar to the unit ``query`` that reach ``threshold``,
    best first (ties: the earlier row, i.e. the more recent ticket)."""
    if len(candidates) == 0 or k <= 0:
        return []
    scores = np.asarray(candidates, dtype=np.float32) @ np.asarray(query, dtype=np.float32)
    order = sorted((row for row in range(len(scores)) if scores[row] >= threshold), key=lambda r: (-scores[r], r))
    return [(row, float(scores[row])) for row in order[:k]]


def solved_candidates(session: Session, exclude_id: int | None, limit: int = CANDIDATES) -> list:
    """The most recent resolved or closed tickets with a solution (not ``exclude_id``): rows of
    id, subject, solution, lang, status, solved_at."""
    solved_at = func.coalesce(Ticket.resolved_at, Ticket.closed_at, Ticket.created_at)
    query = (select(Ticket.id, Ticket.subject, Ticket.solution, Ticket.lang, Ticket.status, solved_at.label("solved_at"))
             .where(Ticket.status.in_((TicketStatus.RESOLVED, TicketStatus.CLOSED)), Ticket.solution != "")
             .order_by(solved_at.desc(), Ticket.id.desc()).limit(limit))
    if exclude_id is not None:
        query = query.where(Ticket.id != exclude_id)
    return list(session.execute(query))


def similar_tickets(session: Session, ticket: Ticket, vectors: QuestionVectors, k: int = SHOWN,
                    threshold: float | None = None) -> list[SimilarTicket]:
    """The up to ``k`` solved tickets most similar to ``ticket`` above the threshold (the backend's measured
    one unless given), best first."""
    rows = solved_candidates(session, ticket.id)
    if not rows:
        return []
    threshold = threshold_for(vectors.backend) if threshold is None else threshold
    matrix = vectors.vectors([problem_text(ticket.subject, ticket.description)]
                             + [solved_text(row.subject, row.solution) for row in rows])
    ranked = rank_by_cosine(matrix[0], matrix[1:], threshold, k)
    return [SimilarTicket(id=rows[i].id, subject=rows[i].subject, solution=shorten(rows[i].solution),
                          lang=rows[i].lang, status=rows[i].status.value, solved_at=rows[i].solved_at,
                          similarity=round(score, 3))
            for i, score in ranked]
