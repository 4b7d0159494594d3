"""Sends the outbox through SMTP, never inside a request: a background thread of each serving process and
`flask mail send-outbox` call ``deliver_due``.

Each message is claimed before it is sent (portal/domain/outbox.py), so several processes on several hosts
send it once. A message that can never be sent as it is (a header it cannot hold, an address the server
refuses for good) fails at once; a server that cannot be reached, or refuses for now, costs the attempt and
the message waits for the next one (1, 2, 4 ... minutes), until MESA_MAIL_MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy.orm import Session

from .domain import outbox
from .domain.models import OutboxMessage, OutboxStatus, utcnow
from .mail_threading import thread_id

SMTP_TIMEOUT = 10  # seconds for each step of the SMTP conversation
BATCH = 50

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0  # given up on (permanent refusal or out of attempts)
    retrying: int = 0  # will be tried again later
    claimed: int = 0
    stopped: bool = False  # the server could not be used; the rest waits for the next run

    def add(self, other: "DeliveryReport") -> None:
        """Count another run's results into this one."""
        self.sent += other.sent
        self.failed += other.failed
        self.retrying += other.retrying
        self.claimed += other.claimed
        self.stopped = other.stopped


class ServerProblem(Exception):
    """The SMTP server could not be used (unreachable, refused the login, hung up): not this message's fault."""


def build_email(config, message: OutboxMessage) -> EmailMessage:
    """The outbox message as an e-mail (plain text, or multipart/alternative with its HTML part when it has
    one); ValueError when a header cannot hold it (a line break, say)."""
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = config["MESA_MAIL_FROM"], message.recipient, message.subject
    if message.message_id:  # a reply to it finds its ticket (portal/domain/inbound.py)
        email["Message-ID"] = message.message_id
    if message.ticket_id:
        email["In-Reply-To"] = email["References"] = thread_id(message.ticket_id, config["MESA_MAIL_FROM"])
    email.set_content(message.body)
    if message.html_body:  # multipart/alternative: the text first, the HTML the reader prefers
        email.add_alternative(message.html_body, subtype="html")
    return email


def connect(config) -> smtplib.SMTP:
    """An SMTP connection, with STARTTLS and login as configured; ServerProblem when that fails."""
    try:
        smtp = smtplib.SMTP(config["MESA_SMTP_HOST"], config["MESA_SMTP_PORT"], timeout=SMTP_TIMEOUT)
    except OSError as exc:  # smtplib's errors are OSErrors too
        raise ServerProblem(f"{type(exc).__name__}: {exc}") from exc
    try:
        if config["MESA_SMTP_STARTTLS"]:
            smtp.starttls()
        if config["MESA_SMTP_USER"]:
            smtp.login(config["MESA_SMTP_USER"], config["MESA_SMTP_PASSWORD"])
    except OSError as exc:
        close(smtp)
        raise ServerProblem(f"{type(exc).__name__}: {exc}") from exc
    return smtp


def close(smtp: smtplib.SMTP | None) -> None:
    """End the SMTP conversation, ignoring a server that is already gone."""
    if smtp is None:
        return
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        try:
            smtp.close()
        except OSError:
            pass


def is_permanent(exc: smtplib.SMTPException) -> bool:
    """Whether the server refused this message for good (an SMTP 5xx reply) rather than for now (4xx)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def send(smtp: smtplib.SMTP, email: EmailMessage) -> None:
    """Send one e-mail on an open connection; ServerProblem when the connection itself failed."""
    try:
        smtp.send_message(email)
    except smtplib.SMTPServerDisconnected as exc:
        raise ServerProblem(f"{type(exc).__name__}: {exc}") from exc
    except smtplib.SMTPException:
        raise
    except OSError as exc:  # a timeout or a reset connection
        raise ServerProblem(f"{type(exc).__name__}: {exc}") from exc


def deliver_due(session: Session, config, holder: str, limit: int = BATCH) -> DeliveryReport:
    """Send up to ``limit`` due messages; each claimed (and committed) before it is sent, and its result
    committed after. Nothing is sent when no SMTP host is configured: the outbox only keeps the messages."""
    report = DeliveryReport()
    if not config["MESA_SMTP_HOST"]:
        return report
    smtp = None
    try:
        for message_id in outbox.due_ids(session, utcnow(), limit):
            claimed = outbox.claim(session, message_id, holder, utcnow())
            session.commit()
            if not claimed:  # another sender took it first
                continue
            report.claimed += 1
            message = session.get(OutboxMessage, message_id, populate_existing=True)
            error, permanent = None, False
            try:
                email = build_email(config, message)
                if smtp is None:
                    smtp = connect(config)
                send(smtp, email)
            except ValueError as exc:  # the message itself cannot be an e-mail
                error, permanent = f"{type(exc).__name__}: {exc}", True
            except smtplib.SMTPException as exc:
                error, permanent = f"{type(exc).__name__}: {exc}", is_permanent(exc)
            except ServerProblem as exc:
                error, report.stopped = str(exc), True
            except Exception as exc:  # a bug: this attempt counts, the message waits, the sender goes on later
                log.exception("e-mail delivery failed")
                error, report.stopped = f"{type(exc).__name__}: {exc}", True
            _record(session, report, message_id, holder, error, permanent, config["MESA_MAIL_MAX_ATTEMPTS"])
            if report.stopped:
                log.warning("SMTP delivery stopped, messages stay in the outbox: %s", error)
                break
    finally:
        close(smtp)
    return report


def _record(session: Session, report: DeliveryReport, message_id: int, holder: str, error: str | None,
            permanent: bool, max_attempts: int) -> None:
    """Write one attempt's result and count it."""
    now = utcnow()
    if error is None:
        if outbox.record_sent(session, message_id, holder, now):
            report.sent += 1
        else:
            log.warning("outbox message %s was sent after its claim expired", message_id)
    else:
        status = outbox.record_failure(session, message_id, holder, now, error, permanent, max_attempts)
        if status == OutboxStatus.FAILED:
            report.failed += 1
        elif status == OutboxStatus.PENDING:
            report.retrying += 1
    session.commit()


def deliver_all_due(session: Session, config, holder: str) -> DeliveryReport:
    """Send every due message, batch after batch, until none is left or the server cannot be used."""
    total = DeliveryReport()
    while True:
        report = deliver_due(session, config, holder)
        total.add(report)
        if report.stopped or report.claimed == 0:
            return total
