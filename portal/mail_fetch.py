"""Fetches the help-desk mailbox: each new message becomes a ticket, a reply, a refusal or a quarantine
(portal/domain/inbound.py), exactly once.

Runs as `flask mail fetch` (cron) and, with MESA_MAIL_IN, in a background thread of the serving processes;
a lease in the database lets one process fetch at a time across workers and hosts. For each message: the
record of it and the ticket (or reply) it made are committed in one transaction, and only then is the message
flagged on the server. A crash between the two leaves the message unflagged: the next fetch finds its record
(mailbox, UIDVALIDITY, UID) and only flags it, so nothing is lost or made twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import imap_client
from .domain import inbound, leases
from .domain.models import utcnow
from .mail_parse import parse
from .notifications import notify_requester

LEASE = "mail-fetch"
LEASE_HOLD = timedelta(minutes=15)  # far longer than one run takes; a fetcher that died frees it after this
BATCH = 200  # messages per folder and run; the rest waits for the next run
# A message bigger than this many times MESA_MAIL_IN_MAX_BYTES is not downloaded: its header is recorded in the
# quarantine and the message itself stays on the server.
DOWNLOAD_FACTOR = 4

log = logging.getLogger(__name__)


@dataclass
class FetchReport:
    """What one fetch did."""

    ran: bool = True
    outcomes: Counter = field(default_factory=Counter)  # disposition -> messages
    already_recorded: int = 0  # recorded by an earlier run that could not flag them: flagged now
    left_for_later: int = 0  # not processed this time (a ticket changed meanwhile): fetched again next run
    problems: list[str] = field(default_factory=list)  # folders the server could not give

    @property
    def processed(self) -> int:
        """Messages processed in this run."""
        return sum(self.outcomes.values())


def category_guesser(app: Flask):
    """Guess a mail's category the way the ask-for-help form does: the category of the first article that
    confidently answers it, else "general" (also when search is down)."""
    from .i18n import CATEGORY_LABELS
    from .search import SearchUnavailable, get_search

    def guess(text: str) -> str:
        try:
            search = get_search()
            answers = search.answers(search.search(" ".join(text.split())[:app.config["MESA_SEARCH_MAX_QUERY"]],
                                                   5, None))
        except SearchUnavailable:
            return "general"
        return answers[0].category if answers and answers[0].category in CATEGORY_LABELS else "general"
    return guess


def intake_for(app: Flask) -> inbound.Intake:
    """The settings and services incoming mail is processed with."""
    config = app.config
    own = {config["MESA_MAIL_FROM"], config["MESA_IMAP_USER"]}
    own_addresses = frozenset(parse(f"From: {address}\n\n".encode(), headers_only=True).sender
                              for address in own if address) - {""}
    return inbound.Intake(own_addresses=own_addresses, max_bytes=config["MESA_MAIL_IN_MAX_BYTES"],
                          rate_per_hour=config["MESA_MAIL_IN_RATE"], policy=app.extensions["mesa_sla"],
                          default_lang=config["MESA_LANGUAGES"].split(",")[0].strip() or "es",
                          guess_category=category_guesser(app), files=app.extensions["mesa_attachments"])


def take_one(session: Session, app: Flask, intake: inbound.Intake, mailbox: str, uidvalidity: int, uid: int,
             raw: bytes, report: FetchReport, size: int | None = None) -> bool:
    """Process one message and commit it with its record; True when it is recorded (so it may be flagged).
    ``size``: the message's size when only its header was downloaded."""
    try:
        outcome = inbound.take_in(session, intake, mailbox, uidvalidity, uid, raw, utcnow(), size)
        if outcome.ticket is not None and outcome.events:
            notify_requester(session, outcome.ticket, outcome.events)
        session.flush()
        record = outcome.record
        summary = (record.id, record.disposition.value, record.sender or "?", record.reason)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if inbound.is_recorded(session, mailbox, uidvalidity, uid):  # another fetcher recorded it first
            report.already_recorded += 1
            return True
        return _quarantine_failure(session, mailbox, uidvalidity, uid, raw, exc, report)
    except StaleDataError:  # an agent saved the ticket at this moment: try again next run
        session.rollback()
        report.left_for_later += 1
        log.info("mail in: %s uid %s left for the next fetch (its ticket changed meanwhile)", mailbox, uid)
        return False
    except Exception as exc:  # a bug or a mail no check foresaw: kept in the quarantine, never lost
        session.rollback()
        return _quarantine_failure(session, mailbox, uidvalidity, uid, raw, exc, report)
    log_line = log.warning if summary[1] in ("quarantined", "refused") else log.info
    log_line("mail in: %s uid %s from %s -> %s (mail %s): %s", mailbox, uid, summary[2], summary[1], summary[0],
             summary[3])
    report.outcomes[summary[1]] += 1
    return True


def _quarantine_failure(session: Session, mailbox: str, uidvalidity: int, uid: int, raw: bytes, exc: Exception,
                        report: FetchReport) -> bool:
    """Keep a message whose processing failed in the quarantine; True when that was recorded (False: the
    database failed too, so the message stays unflagged and is fetched again)."""
    log.error("mail in: processing %s uid %s failed; quarantined", mailbox, uid, exc_info=exc)
    try:
        inbound.record_failure(session, mailbox, uidvalidity, uid, raw,
                               f"processing failed: {type(exc).__name__}: {exc}", utcnow())
        session.commit()
    except Exception:
        session.rollback()
        log.exception("mail in: could not quarantine %s uid %s; it is fetched again next time", mailbox, uid)
        report.left_for_later += 1
        return False
    report.outcomes["quarantined"] += 1
    return True


def fetch_folder(session: Session, app: Flask, intake: inbound.Intake, folder: str, report: FetchReport) -> None:
    """Process every unflagged message of one folder (up to BATCH), each committed, then flagged."""
    mailbox_key = imap_client.mailbox_name(app.config, folder)
    with imap_client.open_mailbox(app.config, folder) as mailbox:
        for uid in mailbox.pending_uids()[:BATCH]:
            if inbound.is_recorded(session, mailbox_key, mailbox.uidvalidity, uid):
                report.already_recorded += 1
            else:
                size = mailbox.size(uid)
                too_big = size > DOWNLOAD_FACTOR * intake.max_bytes
                raw = mailbox.fetch_header(uid) if too_big else mailbox.fetch(uid)
                if raw is None:  # expunged meanwhile
                    continue
                if not take_one(session, app, intake, mailbox_key, mailbox.uidvalidity, uid, raw, report,
                                size if too_big else None):
                    continue
            mark_processed(mailbox, uid)


def mark_processed(mailbox: imap_client.Mailbox, uid: int) -> None:
    """Flag a recorded message on the server (tests make this fail to show that a crash here is harmless)."""
    mailbox.mark_processed(uid)


def fetch(session: Session, app: Flask, holder: str, every: timedelta | None = None) -> FetchReport:
    """Fetch every configured folder if this process gets the lease (with ``every``: only if no fetch started
    in that time); ``ran`` is False when another process holds it."""
    acquired = leases.acquire(session, LEASE, holder, utcnow(), LEASE_HOLD, every)
    session.commit()
    if not acquired:
        return FetchReport(ran=False)
    report = FetchReport()
    intake = intake_for(app)
    try:
        for folder in imap_client.folders(app.config):
            try:
                fetch_folder(session, app, intake, folder, report)
            except (imap_client.MailboxProblem, OSError, imap_client.imaplib.IMAP4.error) as exc:
                session.rollback()
                message = f"{folder}: {type(exc).__name__}: {exc}"
                log.warning("mail in: the mailbox could not be fetched, it is tried again next time: %s", message)
                report.problems.append(message)
        return report
    finally:
        session.rollback()
        leases.release(session, LEASE, holder, utcnow())
        session.commit()
