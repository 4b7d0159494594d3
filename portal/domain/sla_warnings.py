"""Which open tickets are about to miss an SLA target (first response, resolution), and recording that their
agents were warned, once per ticket and target.

The record is one INSERT ... ON CONFLICT DO NOTHING on the (ticket, target) primary key, so of several sweeps
that warn at once (processes, hosts) exactly one writes it, and only that one writes the e-mails in the same
transaction. These functions never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import OPEN_STATUSES, SlaWarning, Ticket

TARGETS = ("response", "resolution")


@dataclass(frozen=True)
class DueWarning:
    """A ticket that has used ``share`` (0-1) of the time to ``target`` and whose agents were not warned."""

    ticket: Ticket
    target: str
    share: float


def used_share(start: datetime, due: datetime, now: datetime) -> float:
    """The part of the time from ``start`` to ``due`` that has passed at ``now`` (1 or more: it is due)."""
    total = (due - start).total_seconds()
    return (now - start).total_seconds() / total if total > 0 else 1.0


def _not_warned(target: str):
    """SQL condition: the ticket's agents were not warned about this target yet."""
    return ~exists().where(and_(SlaWarning.ticket_id == Ticket.id, SlaWarning.target == target))


def due_warnings(session: Session, warn_at: float, now: datetime) -> list[DueWarning]:
    """Open tickets that have used at least ``warn_at`` of the time to a target they have not reached, before
    it is missed (a target already missed is shown as breached in the queue; no late warning is sent)."""
    open_tickets = Ticket.status.in_(OPEN_STATUSES)
    found = []
    for ticket in session.scalars(select(Ticket).where(open_tickets, Ticket.first_response_at.is_(None),
                                                       Ticket.response_due_at > now, _not_warned("response"))
                                  .order_by(Ticket.id)):
        share = used_share(ticket.created_at, ticket.response_due_at, now)
        if share >= warn_at:
            found.append(DueWarning(ticket, "response", share))
    for ticket in session.scalars(select(Ticket).where(open_tickets, Ticket.resolution_due_at > now,
                                                       _not_warned("resolution")).order_by(Ticket.id)):
        share = used_share(ticket.created_at, ticket.resolution_due_at, now)
        if share >= warn_at:
            found.append(DueWarning(ticket, "resolution", share))
    return found


def record(session: Session, ticket_id: int, target: str, now: datetime) -> bool:
    """Record that the warning for this ticket and target is sent now; False when it was recorded already
    (by this sweep earlier, or by another process at the same moment)."""
    if target not in TARGETS:
        raise ValueError(f"unknown SLA target {target!r}")
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"SLA warnings need SQLite or PostgreSQL, not {dialect}")
    written = session.execute(insert(SlaWarning).values(ticket_id=ticket_id, target=target, sent_at=now)
                              .on_conflict_do_nothing(index_elements=[SlaWarning.ticket_id, SlaWarning.target])
                              .returning(SlaWarning.ticket_id)).first()
    return written is not None  # (RETURNING gives no row when the insert did nothing)
