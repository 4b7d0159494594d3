"""Rate limits whose counters live in the database, so a limit holds across every worker process and host.

A rule allows ``limit`` events per fixed window of ``seconds`` (windows aligned to the Unix epoch). Each key
(``login-account:ana@example.com``, ``suggest-address:10.0.0.7``) has one row in ``rate_counters``; counting is
one INSERT ... ON CONFLICT DO UPDATE ... RETURNING (SQLite 3.35+ and PostgreSQL), atomic under concurrency.
These functions never commit: the view that counts commits (or rolls back) with its own transaction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import RateCounter

MAX_KEY = 200


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` events per ``seconds``."""

    limit: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rule":
        """``"10/900"`` (10 per 900 seconds); ValueError naming the expected form otherwise."""
        try:
            limit, seconds = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise ValueError(f"{text!r} is not COUNT/SECONDS, e.g. 10/900") from None
        if limit < 1 or seconds < 1:
            raise ValueError(f"{text!r}: the count and the seconds must be at least 1")
        return cls(limit, seconds)

    def window(self, now: float) -> tuple[int, int]:
        """The start and end (Unix seconds) of the window ``now`` falls in."""
        start = int(now // self.seconds) * self.seconds
        return start, start + self.seconds


@dataclass(frozen=True)
class Count:
    """A key's count in the current window and whether it is over the rule's limit."""

    count: int
    limit: int
    window_end: int
    now: float

    @property
    def exceeded(self) -> bool:
        """More events than the limit allows (for a hit: this one was one too many)."""
        return self.count > self.limit

    @property
    def full(self) -> bool:
        """The limit is reached: one more event would exceed it."""
        return self.count >= self.limit

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends and the count starts again (at least 1)."""
        return max(1, math.ceil(self.window_end - self.now))


def _insert_for(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"rate limits need SQLite or PostgreSQL, not {dialect}")


def hit(session: Session, key: str, rule: Rule, now: float | None = None) -> Count:
    """Count one event for ``key`` in the current window (a new window starts at 1) and return the count."""
    now = time.time() if now is None else now
    start, end = rule.window(now)
    insert = _insert_for(session)
    statement = insert(RateCounter).values(key=key[:MAX_KEY], window_start=start, window_end=end, hits=1)
    same_window = RateCounter.window_start >= statement.excluded.window_start
    statement = statement.on_conflict_do_update(index_elements=[RateCounter.key], set_={
        "hits": case((same_window, RateCounter.hits + 1), else_=1),
        "window_start": case((same_window, RateCounter.window_start), else_=statement.excluded.window_start),
        "window_end": case((same_window, RateCounter.window_end), else_=statement.excluded.window_end),
    }).returning(RateCounter.hits, RateCounter.window_end)
    hits, window_end = session.execute(statement).one()
    return Count(count=hits, limit=rule.limit, window_end=window_end, now=now)


def peek(session: Session, key: str, rule: Rule, now: float | None = None) -> Count:
    """The key's count in the current window, without counting anything."""
    now = time.time() if now is None else now
    start, end = rule.window(now)
    hits = session.scalar(select(RateCounter.hits).where(RateCounter.key == key[:MAX_KEY],
                                                         RateCounter.window_start == start))
    return Count(count=hits or 0, limit=rule.limit, window_end=end, now=now)


def reset(session: Session, key: str) -> None:
    """Forget a key's count (a successful sign-in clears the account's failures)."""
    session.execute(delete(RateCounter).where(RateCounter.key == key[:MAX_KEY]))


def prune(session: Session, now: float | None = None) -> int:
    """Delete the counters whose window is over; returns how many (the desk sweep calls it)."""
    now = time.time() if now is None else now
    return session.execute(delete(RateCounter).where(RateCounter.window_end < int(now))).rowcount or 0
