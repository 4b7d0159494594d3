"""The outbox's delivery states: which messages are due, claiming one (once, whatever the number of processes
and hosts over the database), recording what happened to it, the backlog, and an admin's retry.

Sending is elsewhere (portal/mailer.py); these functions only read and write rows and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .models import OutboxMessage, OutboxStatus

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
# How long a claim holds: far longer than one send can take (every SMTP step times out after 10 s), so a
# message is never claimed twice while it is being sent; a sender that died mid-send frees it after this.
CLAIM_HOLD = timedelta(minutes=5)
MAX_ERROR = 500


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of pending messages whose (next) attempt is due, oldest first."""
    return list(session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


def claim(session: Session, message_id: int, holder: str, now: datetime, hold: timedelta = CLAIM_HOLD) -> bool:
    """Take a due message for sending, counting the attempt: one conditional UPDATE, so of several senders
    that try at once exactly one gets it (True). Commit before sending, so the others see the claim."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.next_attempt_at <= now)
        .values(next_attempt_at=now + hold, claimed_by=holder[:80], attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def record_sent(session: Session, message_id: int, holder: str, now: datetime) -> bool:
    """Mark a message this holder claimed as sent (False: its claim had expired and another sender took it)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == holder[:80],
               OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SENT, sent_at=now, claimed_by="", last_error="")
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: 1, 2, 4 ... minutes, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def record_failure(session: Session, message_id: int, holder: str, now: datetime, error: str, permanent: bool,
                   max_attempts: int) -> OutboxStatus | None:
    """After a failed attempt: failed for good when ``permanent`` or out of attempts, else pending again after
    the backoff. Returns the new status (None: the claim had expired and another sender took the message)."""
    attempts = session.scalar(select(OutboxMessage.attempts).where(OutboxMessage.id == message_id,
                                                                  OutboxMessage.claimed_by == holder[:80]))
    if attempts is None:
        return None
    status = OutboxStatus.FAILED if permanent or attempts >= max_attempts else OutboxStatus.PENDING
    values = {"status": status, "claimed_by": "", "last_error": error[:MAX_ERROR]}
    if status == OutboxStatus.PENDING:
        values["next_attempt_at"] = now + retry_delay(attempts)
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == holder[:80],
               OutboxMessage.status == OutboxStatus.PENDING)
        .values(**values).execution_options(synchronize_session=False))
    return status if result.rowcount == 1 else None


def retry(session: Session, message_id: int, now: datetime) -> bool:
    """An admin sends a failed message again: pending, due now, with a fresh set of attempts (its last error
    stays until the next attempt). False when the message is not (or no longer) failed."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.FAILED)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_by="")
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


@dataclass(frozen=True)
class Backlog:
    """How much of the outbox waits: pending and failed messages, and how old the oldest pending one is."""

    pending: int
    failed: int
    oldest_pending_seconds: float | None


def backlog(session_or_connection, now: datetime) -> Backlog:
    """The outbox backlog, in one grouped query (on the status index); a Session or a bare Connection."""
    rows = session_or_connection.execute(
        select(OutboxMessage.status, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED)))
        .group_by(OutboxMessage.status)).all()
    counts = {OutboxStatus(status): (number, oldest) for status, number, oldest in rows}
    pending, oldest = counts.get(OutboxStatus.PENDING, (0, None))
    return Backlog(pending=pending, failed=counts.get(OutboxStatus.FAILED, (0, None))[0],
                   oldest_pending_seconds=round((now - oldest).total_seconds(), 1) if oldest is not None else None)


def status_counts(session: Session) -> dict[str, int]:
    """How many messages are pending, sent and failed (for the admin page)."""
    counts = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    return {status.value: counts.get(status, 0) for status in OutboxStatus}
