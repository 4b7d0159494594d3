"""Leases on periodic jobs: a row per job, taken with one conditional UPDATE, so that of the processes on
every host over one database only one runs the job at a time, and (for scheduled runs) not more often than
its interval. A holder that dies loses the lease when it expires. These functions never commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import JobLease


def _ensure_row(session: Session, name: str) -> None:
    """Create the job's row if it is missing (several processes may try at once: only one inserts)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    session.execute(insert(JobLease).values(name=name, holder="").on_conflict_do_nothing(index_elements=["name"]))


def acquire(session: Session, name: str, holder: str, now: datetime, hold: timedelta,
            every: timedelta | None = None) -> bool:
    """Take the job's lease until ``now + hold`` if nobody holds it (and, with ``every``, if the job did not
    start in the last ``every``). True for exactly one of several processes that try at once; commit at once
    so the others see it."""
    _ensure_row(session, name)
    conditions = [JobLease.name == name, or_(JobLease.locked_until.is_(None), JobLease.locked_until < now)]
    if every is not None:
        conditions.append(or_(JobLease.last_started_at.is_(None), JobLease.last_started_at <= now - every))
    result = session.execute(update(JobLease).where(*conditions)
                             .values(holder=holder[:120], locked_until=now + hold, last_started_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def release(session: Session, name: str, holder: str, now: datetime) -> bool:
    """Give the lease back when the job is done (False: it had expired and someone else holds it now)."""
    result = session.execute(update(JobLease).where(JobLease.name == name, JobLease.holder == holder[:120])
                             .values(holder="", locked_until=None, last_finished_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1
