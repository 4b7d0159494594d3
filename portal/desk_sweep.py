"""The desk sweep: escalate L1 tickets that used up their share of the resolution time, and close resolved
tickets the customer did not reopen, telling them by e-mail (through the outbox).

It runs in a background thread of each serving process (every MESA_SWEEP_INTERVAL seconds) and as
`flask desk sweep` from cron, never in a request. Two things keep several processes and hosts from
double-acting: a lease row in the database (portal/domain/leases.py) lets one process sweep at a time, and
each ticket is its own transaction on the version it read, so an agent saving the same ticket at that moment
wins and the sweep leaves that ticket to its next run instead of failing.
The sweep also warns agents of tickets about to miss an SLA target (portal/sla_warnings.py, once per ticket
and target) and deletes the rate-limit counters whose window is over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from .domain import leases, rate_limits
from .domain import tickets as ticket_service
from .domain.errors import DomainError
from .domain.models import Ticket, utcnow
from .notifications import notify_requester
from .sla_warnings import warn_due

LEASE = "desk-sweep"
LEASE_HOLD = timedelta(minutes=10)  # far longer than a sweep takes; a sweeper that died frees it after this

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did: the tickets escalated and closed, and those left for the next run."""

    ran: bool = True
    escalated: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    conflicts: int = 0
    warned: list[tuple[int, str]] = field(default_factory=list)  # (ticket id, SLA target) warned about


def _change_one(session: Session, ticket: Ticket, is_due, change) -> bool | None:
    """Apply one automatic change to one ticket in its own transaction, with the requester's notification.
    True: saved; False: no longer due; None: someone saved the ticket meanwhile, so nothing was."""
    try:
        if not is_due(ticket):  # read again after an earlier ticket's rollback: it may have changed
            return False
        logged_before = len(ticket.events)
        change(ticket)
        notify_requester(session, ticket, ticket.events[logged_before:])
        session.commit()
        return True
    except (StaleDataError, ObjectDeletedError, DomainError):
        session.rollback()
        return None


def _count(report: SweepReport, done: list[int], ticket_id: int, outcome: bool | None) -> None:
    """Record one ticket's outcome in the report."""
    if outcome:
        done.append(ticket_id)
    elif outcome is None:
        report.conflicts += 1
        log.info("desk sweep: ticket %s changed meanwhile; left for the next sweep", ticket_id)


def _with_ids(tickets: list[Ticket]) -> list[tuple[int, Ticket]]:
    """The tickets with their ids read now (after a rollback, reading an id would load the row again)."""
    return [(ticket.id, ticket) for ticket in tickets]


def sweep(session: Session, app: Flask, now: datetime | None = None) -> SweepReport:
    """Escalate and close what is due, ticket by ticket (without the lease: ``run_sweep`` takes it)."""
    now = now or utcnow()
    policy, after_days = app.extensions["mesa_sla"], app.config["MESA_AUTO_CLOSE_DAYS"]
    report = SweepReport()
    for ticket_id, ticket in _with_ids(ticket_service.tickets_due_for_escalation(session, policy, now)):
        _count(report, report.escalated, ticket_id, _change_one(
            session, ticket, lambda t: ticket_service.due_for_escalation(t, policy, now),
            lambda t: ticket_service.escalate(session, t, None, "", now=now)))
    for ticket_id, ticket in _with_ids(ticket_service.tickets_due_for_closing(session, after_days, now)):
        _count(report, report.closed, ticket_id, _change_one(
            session, ticket, lambda t: ticket_service.due_for_closing(t, after_days, now),
            lambda t: ticket_service.close_automatically(session, t, after_days, now)))
    report.warned = warn_due(session, app, now)
    rate_limits.prune(session, now.timestamp())
    session.commit()
    return report


def run_sweep(session: Session, app: Flask, holder: str, every: timedelta | None = None) -> SweepReport:
    """Sweep if this process gets the lease (with ``every``: only if no sweep started in that time);
    ``ran`` is False when another process holds it."""
    acquired = leases.acquire(session, LEASE, holder, utcnow(), LEASE_HOLD, every)
    session.commit()
    if not acquired:
        return SweepReport(ran=False)
    try:
        return sweep(session, app)
    finally:
        session.rollback()  # nothing is pending after a clean sweep; after a failure, this clears it
        leases.release(session, LEASE, holder, utcnow())
        session.commit()
