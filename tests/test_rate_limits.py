"""The database-backed rate-limit counters: fixed windows, atomic counting under concurrency, pruning."""

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import get_session
from portal.domain import rate_limits
from portal.domain.models import RateCounter
from portal.domain.rate_limits import Rule


def test_a_rule_reads_count_per_seconds_and_refuses_anything_else():
    assert Rule.parse("10/900") == Rule(10, 900)
    for bad in ("10", "ten/900", "0/60", "5/0", "1/2/3", ""):
        with pytest.raises(ValueError, match="COUNT/SECONDS|at least 1"):
            Rule.parse(bad)


def test_hits_count_up_within_a_window_and_start_again_in_the_next(db):
    rule = Rule(2, 60)
    start = 1_800_000_000 - 1_800_000_000 % 60
    counts = [rate_limits.hit(db, "k", rule, now=start + offset) for offset in (0, 10, 59)]
    assert [c.count for c in counts] == [1, 2, 3]
    assert [c.exceeded for c in counts] == [False, False, True]
    assert counts[1].full and counts[2].retry_after == 1
    assert rate_limits.peek(db, "k", rule, now=start + 30).count == 3
    nxt = rate_limits.hit(db, "k", rule, now=start + 61)
    assert (nxt.count, nxt.exceeded, nxt.retry_after) == (1, False, 59)
    assert rate_limits.peek(db, "other", rule, now=start).count == 0


def test_a_host_with_a_clock_behind_counts_in_the_current_window(db):
    rule = Rule(5, 60)
    start = 1_800_000_000 - 1_800_000_000 % 60
    rate_limits.hit(db, "k", rule, now=start + 65)
    late = rate_limits.hit(db, "k", rule, now=start + 5)  # a host whose clock is a minute behind
    assert late.count == 2, "an older window never resets a newer count"


def test_reset_and_prune(db):
    rule = Rule(5, 60)
    rate_limits.hit(db, "old", rule, now=1000)
    rate_limits.hit(db, "new", rule, now=5000)
    rate_limits.reset(db, "new")
    assert rate_limits.peek(db, "new", rule, now=5000).count == 0
    rate_limits.hit(db, "new", rule, now=5000)
    assert rate_limits.prune(db, now=3000) == 1
    assert list(db.scalars(select(RateCounter.key))) == ["new"]


def test_concurrent_hits_from_many_connections_are_all_counted(seeded_app):
    rule, threads, each = Rule(1000, 3600), 6, 10
    engine = seeded_app.extensions["mesa_engine"]
    errors = []

    def worker():
        try:
            for _ in range(each):
                with Session(engine) as session:
                    rate_limits.hit(session, "shared", rule)
                    session.commit()
        except Exception as exc:  # reported below
            errors.append(exc)

    started = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=60)
    assert errors == []
    with seeded_app.app_context():
        session = get_session()
        assert session.scalar(select(RateCounter.hits).where(RateCounter.key == "shared")) == threads * each
        assert session.scalar(select(func.count()).select_from(RateCounter)) == 1


def test_the_desk_sweep_deletes_counters_whose_window_is_over(seeded_app):
    from portal.desk_sweep import sweep

    with seeded_app.app_context():
        session = get_session()
        rate_limits.hit(session, "long-gone", Rule(5, 60), now=1000)
        rate_limits.hit(session, "current", Rule(5, 3600))
        session.commit()
        sweep(session, seeded_app)
        assert list(session.scalars(select(RateCounter.key))) == ["current"]
