"""Incoming e-mail: what a fetched message becomes (a new ticket, a public reply on its ticket, a refused
automatic message, a duplicate, or a quarantined mail an admin looks at), recorded with its original bytes in
the same transaction, so each message is processed exactly once. These functions never commit.

A reply is matched to its ticket by the thread ids of Mesa's e-mails (In-Reply-To / References), then by the
ticket number in the subject ("[#12]"). Only the ticket's requester and agents may reply by mail: mail from
anyone else into a ticket's thread is quarantined (an admin may release it as a new ticket of its sender).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from mailparser_reply import EmailReplyParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..mail_parse import ParsedMail, parse
from ..mail_threading import ticket_in_thread
from .attachments import AttachmentSettings, CheckedFile, Upload, attach_to_event, screen
from .errors import DomainError
from .models import InboundMail, MailDisposition, OutboxMessage, Ticket, TicketEvent, TicketStatus, User
from .sla import SlaPolicy
from .tickets import MAX_SUBJECT, MAX_TEXT, add_reply, create_ticket
from .users import find_or_create_customer

SUBJECT_NUMBER_RE = re.compile(r"\[#(\d{1,9})\]")
REPLY_LANGUAGES = ["es", "en"]
SPANISH_WROTE_RE = re.compile(r"^El\s.{5,200}\sescribió:\s*$", re.MULTILINE)
COUNTED = (MailDisposition.TICKET, MailDisposition.REPLY)
MAX_REASON = 300

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """How incoming mail is taken in: the settings and services it needs."""

    own_addresses: frozenset[str]
    max_bytes: int
    rate_per_hour: int
    policy: SlaPolicy
    default_lang: str
    guess_category: Callable[[str], str]  # from the mail's text; "general" when nothing fits
    files: AttachmentSettings | None = None  # the mail's attachments become the ticket's (None: only named)


@dataclass
class Outcome:
    """What one message became, and the ticket events to notify about."""

    record: InboundMail
    ticket: Ticket | None = None
    events: list[TicketEvent] | None = None


def is_recorded(session: Session, mailbox: str, uidvalidity: int, uid: int) -> bool:
    """Whether this message of the IMAP server was already processed."""
    return session.scalar(select(InboundMail.id).where(InboundMail.mailbox == mailbox,
                                                       InboundMail.uidvalidity == uidvalidity,
                                                       InboundMail.uid == uid)) is not None


def take_in(session: Session, intake: Intake, mailbox: str, uidvalidity: int, uid: int, raw: bytes,
            now: datetime, size: int | None = None) -> Outcome:
    """Record one fetched message and turn it into what it should be (see ``decide``). ``size``: the whole
    message's size when ``raw`` is only its header (too big to download; it stays on the server)."""
    record = InboundMail(mailbox=mailbox[:200], uidvalidity=uidvalidity, uid=uid, raw=raw, size=size or len(raw),
                         received_at=now, disposition=MailDisposition.QUARANTINED)
    session.add(record)
    return decide(session, intake, record, now)


def record_failure(session: Session, mailbox: str, uidvalidity: int, uid: int, raw: bytes, reason: str,
                   now: datetime) -> InboundMail:
    """Quarantine a message whose processing failed unexpectedly, so that it is kept and not fetched again."""
    parsed = parse(raw, headers_only=True)
    record = InboundMail(mailbox=mailbox[:200], uidvalidity=uidvalidity, uid=uid, raw=raw, size=len(raw),
                         received_at=now, disposition=MailDisposition.QUARANTINED, reason=reason[:MAX_REASON],
                         sender=parsed.sender, subject=parsed.subject[:300], message_id=parsed.message_id[:250])
    session.add(record)
    session.flush()
    return record


def _set(record: InboundMail, disposition: MailDisposition, reason: str = "") -> None:
    record.disposition, record.reason = disposition, reason[:MAX_REASON]


def decide(session: Session, intake: Intake, record: InboundMail, now: datetime, release: bool = False
           ) -> Outcome:
    """Make the recorded message a ticket, a reply, a refusal, a duplicate or a quarantine, in that order of
    checks. ``release``: an admin let it through, so the size, the rate and the thread's owner are not
    checked again (a stranger's mail into a thread becomes a ticket of its own)."""
    too_big = record.size > intake.max_bytes
    header_only = len(record.raw) < record.size  # the message itself was left on the server
    parsed = parse(record.raw, intake.own_addresses, headers_only=header_only or (too_big and not release))
    record.sender, record.subject = parsed.sender, parsed.subject[:300]
    record.message_id = parsed.message_id[:250]
    session.flush()
    outcome = Outcome(record)
    if header_only:
        _set(record, MailDisposition.QUARANTINED,
             f"too big to download: {record.size} bytes; only its header is here, the message stays on the "
             f"server in {record.mailbox}")
    elif parsed.automatic:
        _set(record, MailDisposition.REFUSED, parsed.automatic)
    elif parsed.problem:
        _set(record, MailDisposition.QUARANTINED, parsed.problem)
    elif not parsed.sender:
        _set(record, MailDisposition.QUARANTINED, "no sender address (From)")
    elif not (too_big and not release) and not (parsed.subject or parsed.text or parsed.attachments):
        _set(record, MailDisposition.QUARANTINED, "empty: no subject, no text, no attachment")
    elif _duplicate_of(session, record) is not None:
        _set(record, MailDisposition.DUPLICATE,
             f"Message-ID already processed (mail {_duplicate_of(session, record)})")
    elif too_big and not release:
        _set(record, MailDisposition.QUARANTINED,
             f"too big: {record.size} bytes, more than MESA_MAIL_IN_MAX_BYTES={intake.max_bytes}")
    elif not release and not _is_agent(session, record.sender) and \
            _sent_last_hour(session, record.sender, now) >= intake.rate_per_hour:
        _set(record, MailDisposition.QUARANTINED,
             f"over the rate: {intake.rate_per_hour} e-mails from {record.sender} in the last hour")
    else:
        _route(session, intake, record, parsed, now, release, outcome)
    return outcome


def _duplicate_of(session: Session, record: InboundMail) -> int | None:
    """The id of an earlier mail with the same Message-ID that was processed, or None."""
    if not record.message_id:
        return None
    return session.scalar(select(InboundMail.id).where(
        InboundMail.message_id == record.message_id, InboundMail.id != record.id,
        InboundMail.disposition.in_(COUNTED + (MailDisposition.REFUSED,))).order_by(InboundMail.id).limit(1))


def _is_agent(session: Session, address: str) -> bool:
    """Whether the address is an active agent's (agents answering many tickets by mail are not held back)."""
    user = session.scalar(select(User).where(User.email == address))
    return user is not None and user.active and user.is_agent


def _sent_last_hour(session: Session, sender: str, now: datetime) -> int:
    """How many of this sender's mails became tickets or replies in the last hour."""
    return session.scalar(select(func.count()).select_from(InboundMail).where(
        InboundMail.sender == sender, InboundMail.received_at > now - timedelta(hours=1),
        InboundMail.disposition.in_(COUNTED)))


def thread_ticket(session: Session, parsed: ParsedMail) -> Ticket | None:
    """The ticket the mail answers: by the Message-IDs it refers to, else by "[#N]" in its subject."""
    ids = parsed.thread_ids
    ticket_id = ticket_in_thread(ids)
    if ticket_id is None and ids:
        ticket_id = session.scalar(select(OutboxMessage.ticket_id).where(
            OutboxMessage.message_id.in_(ids[-50:]), OutboxMessage.ticket_id.is_not(None)).limit(1))
    if ticket_id is None and ids:
        ticket_id = session.scalar(select(InboundMail.ticket_id).where(
            InboundMail.message_id.in_(ids[-50:]), InboundMail.ticket_id.is_not(None)).limit(1))
    if ticket_id is None:
        match = SUBJECT_NUMBER_RE.search(parsed.subject)
        ticket_id = int(match.group(1)) if match else None
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def reply_text(text: str) -> str:
    """The new part of a reply: quoted history and signature cut (mail-parser-reply); the whole text when
    nothing would be left."""
    # Gmail's Spanish "El mar, 1 dic 2026 a las 10:00, X <x@y> escribió:" (one space before "escribió"),
    # which the library's Spanish pattern misses.
    match = SPANISH_WROTE_RE.search(text)
    cut = text[:match.start()] if match and text[:match.start()].strip() else text
    try:
        latest = EmailReplyParser(languages=list(REPLY_LANGUAGES)).read(cut).replies
        body = latest[0].body.strip() if latest else ""
    except Exception:  # the library failing on odd text must not lose the reply
        log.exception("mail in: could not cut the quoted history; the whole text is kept")
        body = ""
    return body or cut.strip()


def _route(session: Session, intake: Intake, record: InboundMail, parsed: ParsedMail, now: datetime,
           release: bool, outcome: Outcome) -> None:
    """A reply on the mail's ticket when its sender may reply there; otherwise a new ticket."""
    user = session.scalar(select(User).where(User.email == parsed.sender))
    if user is not None and not user.active:
        _set(record, MailDisposition.QUARANTINED, f"the account of {parsed.sender} is disabled")
        return
    ticket = thread_ticket(session, parsed)
    if ticket is not None:
        may_reply = user is not None and (user.is_agent or user.id == ticket.requester_id)
        if not may_reply and not release:
            _set(record, MailDisposition.QUARANTINED,
                 f"{parsed.sender} wrote into the thread of ticket {ticket.number} but is not its requester "
                 "nor an agent")
            return
        if may_reply and not (ticket.status == TicketStatus.CLOSED and not user.is_agent):
            _reply(session, intake, record, parsed, ticket, user, now, outcome)
            return
    _new_ticket(session, intake, record, parsed, user, now, outcome,
                follows=ticket.number if ticket is not None else "")


def _with_mail(event: TicketEvent, record: InboundMail) -> None:
    """Link a ticket event to the e-mail it came from (its .eml is offered beside it)."""
    event.data = {**(event.data or {}), "mail": record.id}


def _reply(session: Session, intake: Intake, record: InboundMail, parsed: ParsedMail, ticket: Ticket, user: User,
           now: datetime, outcome: Outcome) -> None:
    """The mail's new text as a public reply on the ticket, its files attached to the reply."""
    body = reply_text(parsed.text) or parsed.subject
    files, note = _screen_attachments(intake, parsed)
    if note:
        body += "\n\n" + note
    logged_before = len(ticket.events)
    try:
        add_reply(session, ticket, user, body[:MAX_TEXT], True, ticket.version, now=now)
    except DomainError as exc:
        _set(record, MailDisposition.QUARANTINED, f"refused as a reply to {ticket.number}: {exc.message}")
        return
    events = list(ticket.events[logged_before:])
    _with_mail(events[0], record)
    if files:
        attach_to_event(session, intake.files, ticket, events[0], user, files)
    record.ticket = ticket
    _set(record, MailDisposition.REPLY, f"reply on {ticket.number}")
    outcome.ticket, outcome.events = ticket, events


def _screen_attachments(intake: Intake, parsed: ParsedMail) -> tuple[list[CheckedFile], str]:
    """The mail's files that become attachments (within the limits and of an accepted type), and a line
    naming the others, which stay in the original e-mail ("" when there are none)."""
    uploads = [Upload(attachment.name, attachment.data) for attachment in parsed.attachments]
    if intake.files is None:
        accepted, refused = [], [f"{u.name} ({len(u.data)} bytes)" for u in uploads]
    else:
        accepted, refused = screen(uploads, intake.files)
    if not refused:
        return accepted, ""
    return accepted, f"[Not attached, kept in the original e-mail: {'; '.join(refused[:20])}]"


def _new_ticket(session: Session, intake: Intake, record: InboundMail, parsed: ParsedMail, user: User | None,
                now: datetime, outcome: Outcome, follows: str = "") -> None:
    """A new ticket from the mail, through the same path as the portal's form."""
    text = parsed.text
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    subject = (parsed.subject or first_line or f"E-mail from {parsed.sender}")[:MAX_SUBJECT]
    description = text or subject
    files, note = _screen_attachments(intake, parsed)
    if note:
        description += "\n\n" + note
    if len(description) > MAX_TEXT:
        description = description[:MAX_TEXT - 80] + "\n\n[Cut: the whole text is in the original e-mail.]"
    try:
        requester = user or find_or_create_customer(session, parsed.sender, parsed.sender_name)
        ticket = create_ticket(session, requester, subject, description, intake.guess_category(f"{subject}. {text}"),
                               3, 2 if parsed.urgent else 3, intake.policy, lang=parsed.lang or intake.default_lang,
                               now=now, by_email=True)
    except DomainError as exc:
        _set(record, MailDisposition.QUARANTINED, f"could not become a ticket: {exc.message}")
        return
    events = list(ticket.events)
    _with_mail(events[0], record)
    if files:
        attach_to_event(session, intake.files, ticket, events[0], requester, files)
    record.ticket = ticket
    _set(record, MailDisposition.TICKET, f"new ticket {ticket.number}" + (f" (after {follows})" if follows else ""))
    outcome.ticket, outcome.events = ticket, events


# ----- the quarantine, for admins ----------------------------------------------------------------------------


def recent_mail(session: Session, disposition: MailDisposition | None = MailDisposition.QUARANTINED,
                limit: int = 200) -> list[InboundMail]:
    """Recent incoming mail with this disposition (None: all), newest first."""
    query = select(InboundMail).order_by(InboundMail.id.desc()).limit(limit)
    if disposition is not None:
        query = query.where(InboundMail.disposition == disposition)
    return list(session.scalars(query))


def disposition_counts(session: Session) -> dict[str, int]:
    """How many incoming mails became what."""
    counts = dict(session.execute(select(InboundMail.disposition, func.count()).group_by(InboundMail.disposition))
                  .all())
    return {value.value: counts.get(value, 0) for value in MailDisposition}


def release(session: Session, intake: Intake, record: InboundMail, now: datetime) -> Outcome | None:
    """An admin lets a quarantined mail through: processed again without the size, rate and thread-owner
    checks. None when it is not quarantined (any more); the outcome otherwise (it may stay quarantined, with
    the new reason, when it still cannot be read)."""
    if record.disposition != MailDisposition.QUARANTINED:
        return None
    record.handled_at = now
    return decide(session, intake, record, now, release=True)


def discard(session: Session, record: InboundMail, now: datetime) -> bool:
    """An admin throws a quarantined mail away: its original bytes are dropped, the record stays (so it is never
    fetched again). False when it is not quarantined."""
    if record.disposition != MailDisposition.QUARANTINED:
        return False
    record.raw, record.handled_at = b"", now
    _set(record, MailDisposition.DISCARDED, f"discarded by an admin; was: {record.reason}")
    return True
