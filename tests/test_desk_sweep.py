"""The desk sweep runs outside requests (a job in the serving process, or cron), once at a time across processes."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.db import get_session
from portal.desk_sweep import LEASE, LEASE_HOLD, run_sweep, sweep
from portal.domain import leases
from portal.domain import tickets as svc
from portal.domain.models import JobLease, OutboxMessage, Role, Ticket, TicketEvent, TicketStatus, utcnow
from tests.conftest import user_by_role


def make_due_tickets(app, lang="es"):
    """An L1 ticket past its escalation point and a ticket resolved longer ago than MESA_AUTO_CLOSE_DAYS."""
    with app.app_context():
        session = get_session()
        customer, l2 = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        policy, long_ago = app.extensions["mesa_sla"], utcnow() - timedelta(days=30)
        overdue = svc.create_ticket(session, customer, "VPN drops", "text", "vpn", 1, 1, policy, now=long_ago,
                                    lang=lang)
        resolved = svc.create_ticket(session, customer, "Printer jam", "text", "printers", 3, 3, policy,
                                     now=long_ago, lang=lang)
        svc.resolve(session, resolved, l2, "Removed the paper.", resolved.version, now=long_ago)
        session.commit()
        return overdue.id, resolved.id


def run(app, holder="host-a:1:mesa-sweep", every=None):
    with app.app_context():
        return run_sweep(get_session(), app, holder, every)


def ticket(app, ticket_id):
    with app.app_context():
        return get_session().get(Ticket, ticket_id)


def outbox_of(app, ticket_id):
    with app.app_context():
        return list(get_session().scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id)))


def test_the_sweep_escalates_closes_and_tells_the_requester_in_their_language(seeded_app):
    overdue_id, resolved_id = make_due_tickets(seeded_app, lang="es")
    mails_before = len(outbox_of(seeded_app, resolved_id))
    report = run(seeded_app)
    assert report.ran and report.escalated == [overdue_id] and report.closed == [resolved_id]
    assert report.conflicts == 0
    escalated, closed = ticket(seeded_app, overdue_id), ticket(seeded_app, resolved_id)
    assert escalated.level == 2 and escalated.status == TicketStatus.ESCALATED
    assert closed.status == TicketStatus.CLOSED and closed.closed_at is not None
    mails = outbox_of(seeded_app, resolved_id)[mails_before:]
    assert len(mails) == 1 and mails[0].recipient == "customer@example.com"
    assert mails[0].subject == f"[#{resolved_id}] Cerrado: Printer jam"
    assert "se ha cerrado" in mails[0].body and "hace 7 días" in mails[0].body
    assert "http://127.0.0.1:5000/help" in mails[0].body
    assert run(seeded_app).escalated == [] and run(seeded_app).closed == []  # done once


def test_the_closing_mail_is_in_english_for_an_english_ticket(seeded_app):
    _, resolved_id = make_due_tickets(seeded_app, lang="en")
    run(seeded_app)
    mail = outbox_of(seeded_app, resolved_id)[-1]
    assert mail.subject == f"[#{resolved_id}] Closed: Printer jam"
    assert "was resolved 7 days ago and has not been reopened, so it is now closed" in mail.body


def test_a_second_sweep_while_one_runs_does_nothing(seeded_app, monkeypatch):
    overdue_id, resolved_id = make_due_tickets(seeded_app)
    escalate, inner = svc.escalate, []

    def escalate_while_another_process_sweeps(session, ticket, *args, **kwargs):
        if not inner:
            inner.append(run(seeded_app, holder="host-b:2:mesa-sweep"))
        return escalate(session, ticket, *args, **kwargs)

    monkeypatch.setattr(svc, "escalate", escalate_while_another_process_sweeps)
    first = run(seeded_app)
    assert first.ran and first.escalated == [overdue_id] and first.closed == [resolved_id]
    assert inner[0].ran is False and inner[0].escalated == inner[0].closed == []
    with seeded_app.app_context():
        kinds = [e.kind for e in get_session().scalars(select(TicketEvent).where(TicketEvent.ticket_id == overdue_id))]
    assert kinds.count("escalated") == 1


def test_two_sweeps_started_at_once_act_once_and_neither_fails(seeded_app):
    overdue_id, resolved_id = make_due_tickets(seeded_app)
    barrier, reports, errors = threading.Barrier(2), [], []

    def sweeper(name):
        try:
            barrier.wait(5)
            reports.append(run(seeded_app, holder=f"{name}:1:mesa-sweep"))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(name,)) for name in ("host-a", "host-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(reports) == 2
    assert sorted(ticket_id for r in reports for ticket_id in r.escalated + r.closed) == [overdue_id, resolved_id]
    with seeded_app.app_context():
        events = list(get_session().scalars(select(TicketEvent).where(
            TicketEvent.ticket_id.in_([overdue_id, resolved_id]), TicketEvent.actor_id.is_(None),
            TicketEvent.kind.in_(["escalated", "status"]))))
    assert len(events) == 2


def test_a_ticket_an_agent_saves_during_the_sweep_is_left_for_the_next_one(seeded_app, monkeypatch):
    overdue_id, resolved_id = make_due_tickets(seeded_app)
    escalate = svc.escalate

    def escalate_while_an_agent_saves(session, ticket, *args, **kwargs):
        with seeded_app.extensions["mesa_engine"].begin() as connection:  # another worker saves the ticket
            connection.execute(update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version + 1))
        return escalate(session, ticket, *args, **kwargs)

    monkeypatch.setattr(svc, "escalate", escalate_while_an_agent_saves)
    report = run(seeded_app)
    assert report.escalated == [] and report.conflicts == 1 and report.closed == [resolved_id]
    assert ticket(seeded_app, overdue_id).level == 1
    monkeypatch.setattr(svc, "escalate", escalate)
    assert run(seeded_app).escalated == [overdue_id]


def test_scheduled_sweeps_run_at_most_once_an_interval_and_cron_runs_between(seeded_app):
    every = timedelta(seconds=60)
    assert run(seeded_app, holder="host-a:1:mesa-sweep", every=every).ran
    assert not run(seeded_app, holder="host-b:2:mesa-sweep", every=every).ran  # host b's thread: too soon
    assert run(seeded_app, holder="cron:3:MainThread").ran  # `flask desk sweep` is not held to the interval
    with seeded_app.app_context():
        lease = get_session().get(JobLease, LEASE)
        assert lease.holder == "" and lease.locked_until is None and lease.last_finished_at is not None


def test_a_lease_whose_holder_died_is_taken_over_after_it_expires(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        now = utcnow()
        assert leases.acquire(session, LEASE, "dead-host:9:mesa-sweep", now, LEASE_HOLD)
        session.commit()
        assert not leases.acquire(session, LEASE, "host-a:1:mesa-sweep", now + LEASE_HOLD - timedelta(seconds=1),
                                  LEASE_HOLD)
        assert leases.acquire(session, LEASE, "host-a:1:mesa-sweep", now + LEASE_HOLD + timedelta(seconds=1),
                              LEASE_HOLD)
        session.commit()
        assert not leases.release(session, LEASE, "dead-host:9:mesa-sweep", utcnow())
        assert leases.release(session, LEASE, "host-a:1:mesa-sweep", utcnow())
        session.commit()


def test_a_failing_sweep_gives_its_lease_back(seeded_app, monkeypatch):
    make_due_tickets(seeded_app)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(svc, "tickets_due_for_escalation", broken)
    with pytest.raises(RuntimeError):
        run(seeded_app)
    with seeded_app.app_context():
        assert get_session().get(JobLease, LEASE).locked_until is None


def test_flask_desk_sweep_reports_what_it_did(seeded_app):
    make_due_tickets(seeded_app)
    runner = seeded_app.test_cli_runner()
    result = runner.invoke(args=["desk", "sweep"])
    assert result.exit_code == 0 and "Escalated 1 tickets, closed 1." in result.output
    with seeded_app.app_context():
        session = get_session()
        assert leases.acquire(session, LEASE, "host-a:1:mesa-sweep", utcnow(), LEASE_HOLD)
        session.commit()
    busy = runner.invoke(args=["desk", "sweep"])
    assert busy.exit_code == 0 and "Another process is sweeping right now" in busy.output


def test_sweep_without_the_lease_changes_only_due_tickets(seeded_app):
    overdue_id, resolved_id = make_due_tickets(seeded_app)
    with seeded_app.app_context():
        report = sweep(get_session(), seeded_app, now=utcnow() - timedelta(days=29, hours=12))
    assert report.escalated == [overdue_id] and report.closed == []  # resolved only half a day before then
