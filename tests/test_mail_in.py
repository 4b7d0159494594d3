"""Mail in against a real IMAP server (a throwaway Dovecot on 127.0.0.1, started by scripts/dovecot.sh): mail
becomes tickets and replies, exactly once, automatic mail is refused, bad mail is quarantined and never lost,
and admins see, release and discard the quarantine."""

from __future__ import annotations

import imaplib
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import mail_fetch
from portal.db import get_session
from portal.domain import tickets as ticket_service
from portal.domain import users as user_service
from portal.domain.models import (Attachment, InboundMail, MailDisposition, OutboxMessage, Role, Ticket,
                                  TicketStatus, User, utcnow)
from portal.i18n import CATEGORY_LABELS
from portal.mailer import build_email
from portal.notifications import notify_requester

from .conftest import PASSWORD, ROLE_EMAILS, AuthActions, csrf_token_from, user_by_role

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "dovecot.sh"
CORPUS = Path(__file__).parent / "data" / "mail"
IMAP_USER, IMAP_PASSWORD = "mesa", "mesa-test-password"
CUSTOMER = ROLE_EMAILS[Role.CUSTOMER]

# What each corpus file must become (tests/data/mail/README.md says why).
CORPUS_EXPECTED = {
    "01": "ticket", "02": "ticket", "03": "ticket", "04": "ticket", "05": "quarantined", "06": "quarantined",
    "07": "ticket", "08": "quarantined", "09": "quarantined", "10": "refused", "11": "refused", "12": "refused",
    "13": "refused", "14": "refused", "15": "refused", "16": "ticket", "17": "quarantined", "18": "ticket",
    "19": "ticket", "20": "ticket", "21": "ticket", "22": "refused", "23": "ticket", "24": "ticket",
    "25": "ticket", "26": "ticket", "27": "ticket", "28": "ticket", "29": "refused", "30": "ticket",
    "31": "quarantined",
}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Dovecot:
    """The test server: IMAP with STARTTLS on ``port``, IMAPS on ``tls_port``, its certificate and log."""

    port: int
    tls_port: int
    directory: Path

    @property
    def certificate(self) -> str:
        return str(self.directory / "cert.pem")

    def log(self) -> str:
        return (self.directory / "dovecot.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def dovecot():
    """A Dovecot IMAP server for this test session (installed if missing; `make test` installs it first). Fails,
    never skips, when it cannot be installed: the mail tests are worth nothing without the real server."""
    if not Path("/usr/sbin/dovecot").exists():
        installed = subprocess.run([str(SCRIPT), "install"], capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            pytest.fail(f"Dovecot cannot be installed here (scripts/dovecot.sh install): {installed.stderr[-300:]}",
                        pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="mesa-dovecot-"))  # under /tmp: its mail user must reach it
    server = Dovecot(free_port(), free_port(), directory)
    started = subprocess.run([str(SCRIPT), "start", str(directory), str(server.port), str(server.tls_port)],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    yield server
    subprocess.run([str(SCRIPT), "stop", str(directory)], timeout=60)
    shutil.rmtree(directory, ignore_errors=True)


class TestMailbox:
    """One fresh folder of the test server: deliver mail into it, look at its flags."""

    __test__ = False

    def __init__(self, port: int):
        self.port = port
        self.folder = f"t{secrets.token_hex(4)}"
        with self.connect() as client:
            assert client.create(self.folder)[0] == "OK"

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login(IMAP_USER, IMAP_PASSWORD)
        return client

    def deliver(self, raw: bytes | EmailMessage) -> None:
        """Put a message in the folder, as the mail server does on delivery (IMAP APPEND)."""
        data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
        with self.connect() as client:
            status, detail = client.append(self.folder, None, None, data)
            assert status == "OK", detail

    def unprocessed(self) -> int:
        """How many messages are not flagged as processed by Mesa."""
        with self.connect() as client:
            client.select(self.folder)
            data = client.uid("SEARCH", None, "UNKEYWORD", "$MesaProcessed")[1]
            return len(data[0].split())


@pytest.fixture
def mailbox(dovecot, seeded_app):
    """A fresh folder, and the app configured to fetch it."""
    box = TestMailbox(dovecot.port)
    seeded_app.config.update(MESA_IMAP_HOST="127.0.0.1", MESA_IMAP_PORT=dovecot.port, MESA_IMAP_TLS="none",
                             MESA_IMAP_USER=IMAP_USER, MESA_IMAP_PASSWORD=IMAP_PASSWORD,
                             MESA_IMAP_FOLDERS=box.folder)
    return box


def mail(sender: str, subject: str, body: str, **headers) -> EmailMessage:
    """A plain-text e-mail to the help desk."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "help@mesa.example", subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@client.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def fetch(app):
    """Run `flask mail fetch` and return its output (it must succeed)."""
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code == 0, result.output
    return result.output


def tickets_of(app, email: str) -> list[Ticket]:
    with app.app_context():
        session = get_session()
        return list(session.scalars(select(Ticket).join(User, Ticket.requester_id == User.id)
                                    .where(User.email == email).order_by(Ticket.id)))


def count(app, model, *where) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model).where(*where))


# ----- new mail, replies ---------------------------------------------------------------------------------------


def test_a_new_mail_becomes_a_ticket_of_a_new_customer_the_way_the_portal_makes_one(mailbox, seeded_app):
    mailbox.deliver(mail("Nora Nueva <Nora.Nueva@client.example>", "No puedo conectarme a la VPN desde casa",
                         "Desde esta mañana la VPN dice que la autenticación falla.", Content_Language="es"))
    output = fetch(seeded_app)
    assert "1 ticket" in output
    with seeded_app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.email == "nora.nueva@client.example"))
        assert user.role == Role.CUSTOMER and user.name == "Nora Nueva" and not user.has_password
        assert user_service.authenticate(session, user.email, user_service.NO_PASSWORD) is None
        ticket = session.scalar(select(Ticket).where(Ticket.requester_id == user.id))
        assert ticket.subject == "No puedo conectarme a la VPN desde casa"
        assert "autenticación falla" in ticket.description
        assert ticket.status == TicketStatus.NEW and ticket.assignee is not None  # automatic assignment at L1
        assert ticket.resolution_due_at > ticket.created_at and ticket.category in CATEGORY_LABELS
        created = ticket.events[0]
        assert created.kind == "created" and created.data["mail"]
        record = session.get(InboundMail, created.data["mail"])
        assert record.disposition == MailDisposition.TICKET and record.ticket_id == ticket.id
        acknowledgement = session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
        assert acknowledgement.recipient == user.email and acknowledgement.message_id.startswith("<mesa.")
    assert mailbox.unprocessed() == 0  # flagged once committed


def test_the_category_is_guessed_from_the_knowledge_base(mailbox, seeded_app):
    mailbox.deliver(mail("vpn.person@client.example", "VPN no conecta desde casa",
                         "No puedo conectarme a la VPN desde casa, dice error de autenticación."))
    fetch(seeded_app)
    [ticket] = tickets_of(seeded_app, "vpn.person@client.example")
    assert ticket.category == "vpn"


def test_a_reply_by_mail_lands_on_its_ticket_with_quoted_history_and_signature_cut(mailbox, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        customer = user_by_role(session, Role.CUSTOMER)
        agent = user_by_role(session, Role.AGENT_L1)
        ticket = ticket_service.create_ticket(session, customer, "Printer offline", "It says offline.",
                                              "printers", 3, 3, seeded_app.extensions["mesa_sla"])
        session.flush()
        before = len(ticket.events)
        ticket_service.add_reply(session, ticket, agent, "Please restart it.", True, ticket.version)
        [sent] = notify_requester(session, ticket, ticket.events[before:])
        session.commit()
        ticket_id, outgoing = ticket.id, build_email(seeded_app.config, sent)
    reply = mail(CUSTOMER, "Re: " + outgoing["Subject"],
                 "Restarting did not help, it is still offline.\n\n--\nCarmen\nACME\n\n"
                 f"On Tue, 1 Dec 2026 at 10:00, Mesa <mesa@localhost> wrote:\n> Please restart it.\n",
                 In_Reply_To=outgoing["Message-ID"], References=f"{outgoing['References']} {outgoing['Message-ID']}")
    mailbox.deliver(reply)
    assert "1 reply" in fetch(seeded_app)
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        last_reply = [event for event in ticket.events if event.kind == "reply"][-1]
        assert last_reply.actor.email == CUSTOMER and last_reply.public
        assert last_reply.body == "Restarting did not help, it is still offline."
        assert last_reply.data["mail"]


def test_a_reply_is_matched_by_the_ticket_number_in_its_subject(mailbox, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        ticket = ticket_service.create_ticket(session, user_by_role(session, Role.CUSTOMER), "Wi-Fi drops",
                                              "Every hour.", "wifi", 3, 3, seeded_app.extensions["mesa_sla"])
        session.commit()
        ticket_id = ticket.id
    mailbox.deliver(mail(CUSTOMER.upper(), f"RE: [#{ticket_id}] We received your request: Wi-Fi drops",
                         "It dropped again at 10:15."))
    fetch(seeded_app)
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert [e.body for e in ticket.events if e.kind == "reply"] == ["It dropped again at 10:15."]


def test_an_agent_replying_by_mail_answers_the_customer(mailbox, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        ticket = ticket_service.create_ticket(session, user_by_role(session, Role.CUSTOMER), "Need a monitor",
                                              "Mine broke.", "hardware", 3, 3, seeded_app.extensions["mesa_sla"])
        session.commit()
        ticket_id = ticket.id
    mailbox.deliver(mail(ROLE_EMAILS[Role.AGENT_L2], f"[#{ticket_id}] Need a monitor", "One is on its way."))
    fetch(seeded_app)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        reply = [e for e in ticket.events if e.kind == "reply"][-1]
        assert reply.actor.email == ROLE_EMAILS[Role.AGENT_L2] and ticket.first_response_at is not None
        told = session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id)).all()
        assert any("One is on its way." in message.body and message.recipient == CUSTOMER for message in told)


def test_mail_from_a_stranger_into_a_tickets_thread_is_quarantined_and_released_as_its_own_ticket(
        mailbox, seeded_app, client):
    with seeded_app.app_context():
        session = get_session()
        ticket = ticket_service.create_ticket(session, user_by_role(session, Role.CUSTOMER), "Laptop slow",
                                              "Very slow.", "hardware", 3, 3, seeded_app.extensions["mesa_sla"])
        session.commit()
        ticket_id = ticket.id
    mailbox.deliver(mail("colleague@client.example", f"Re: [#{ticket_id}] Laptop slow", "Mine too!"))
    fetch(seeded_app)
    with seeded_app.app_context():
        session = get_session()
        assert [e.kind for e in session.get(Ticket, ticket_id).events].count("reply") == 0
        record = session.scalar(select(InboundMail).where(InboundMail.sender == "colleague@client.example"))
        assert record.disposition == MailDisposition.QUARANTINED and "not its requester" in record.reason
        record_id = record.id
    AuthActions(client).login(Role.ADMIN)
    page = client.get("/admin/mail")
    assert page.status_code == 200 and "not its requester" in page.text and "colleague@client.example" in page.text
    released = client.post(f"/admin/mail/{record_id}/release", data={"csrf_token": csrf_token_from(page.text)},
                           follow_redirects=True)
    assert released.status_code == 200
    [own] = tickets_of(seeded_app, "colleague@client.example")
    assert own.id != ticket_id and own.description.startswith("Mine too!")


def test_a_reply_to_a_closed_ticket_opens_a_new_one(mailbox, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        ticket = ticket_service.create_ticket(session, user_by_role(session, Role.CUSTOMER), "Old problem",
                                              "Old.", "general", 3, 3, seeded_app.extensions["mesa_sla"])
        ticket.status = TicketStatus.CLOSED
        session.commit()
        ticket_id = ticket.id
    mailbox.deliver(mail(CUSTOMER, f"Re: [#{ticket_id}] Closed: Old problem", "It is back."))
    fetch(seeded_app)
    tickets = tickets_of(seeded_app, CUSTOMER)
    assert tickets[-1].id != ticket_id and tickets[-1].description == "It is back."


# ----- exactly once -----------------------------------------------------------------------------------------------


def test_fetching_twice_makes_no_duplicate(mailbox, seeded_app):
    mailbox.deliver(mail("twice@client.example", "Keyboard broken", "The space bar."))
    fetch(seeded_app)
    assert "nothing new" in fetch(seeded_app)
    assert len(tickets_of(seeded_app, "twice@client.example")) == 1


def test_the_same_message_delivered_twice_is_a_duplicate_not_a_second_ticket(mailbox, seeded_app):
    message = mail("again@client.example", "Phone lost", "I lost my phone.")
    mailbox.deliver(message)
    mailbox.deliver(message)
    fetch(seeded_app)
    assert len(tickets_of(seeded_app, "again@client.example")) == 1
    assert count(seeded_app, InboundMail, InboundMail.disposition == MailDisposition.DUPLICATE) == 1


def test_a_crash_between_commit_and_flag_does_not_duplicate_the_ticket(mailbox, seeded_app, monkeypatch):
    mailbox.deliver(mail("crash@client.example", "Screen black", "The screen stays black."))

    def crash(mailbox, uid):
        raise ConnectionResetError("the server went away before the flag")
    monkeypatch.setattr(mail_fetch, "mark_processed", crash)
    result = seeded_app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code != 0
    assert len(tickets_of(seeded_app, "crash@client.example")) == 1 and mailbox.unprocessed() == 1
    monkeypatch.undo()
    assert "1 already processed, flagged now" in fetch(seeded_app)
    assert len(tickets_of(seeded_app, "crash@client.example")) == 1 and mailbox.unprocessed() == 0


def test_a_crash_before_the_commit_loses_nothing(mailbox, seeded_app, monkeypatch):
    mailbox.deliver(mail("killed@client.example", "Mouse broken", "It does not click."))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # like the process being stopped: no handler runs
    monkeypatch.setattr(mail_fetch, "notify_requester", killed)
    with pytest.raises(KeyboardInterrupt):
        with seeded_app.app_context():
            mail_fetch.fetch(get_session(), seeded_app, "test-holder")
    assert tickets_of(seeded_app, "killed@client.example") == [] and mailbox.unprocessed() == 1
    monkeypatch.undo()
    with seeded_app.app_context():  # the dead fetcher's lease: expired by then in real life
        from portal.domain.models import JobLease
        get_session().get(JobLease, mail_fetch.LEASE).locked_until = None
        get_session().commit()
    fetch(seeded_app)
    assert len(tickets_of(seeded_app, "killed@client.example")) == 1 and mailbox.unprocessed() == 0


def test_only_one_process_fetches_at_a_time(mailbox, seeded_app):
    mailbox.deliver(mail("lease@client.example", "Scanner", "It does not scan."))
    with seeded_app.app_context():
        from datetime import timedelta

        from portal.domain import leases
        session = get_session()
        assert leases.acquire(session, mail_fetch.LEASE, "other-host:1:t", utcnow(), timedelta(minutes=5))
        session.commit()
    assert "Another process is fetching" in fetch(seeded_app)
    assert tickets_of(seeded_app, "lease@client.example") == [] and mailbox.unprocessed() == 1


def test_a_bug_while_processing_quarantines_the_mail_and_the_fetch_goes_on(mailbox, seeded_app, monkeypatch):
    mailbox.deliver(mail("bug@client.example", "First", "first"))
    mailbox.deliver(mail("fine@client.example", "Second", "second"))
    real = mail_fetch.inbound.take_in

    def buggy(session, intake, mailbox_key, uidvalidity, uid, raw, *rest):
        if b"bug@client.example" in raw:
            raise ValueError("a bug")
        return real(session, intake, mailbox_key, uidvalidity, uid, raw, *rest)
    monkeypatch.setattr(mail_fetch.inbound, "take_in", buggy)
    fetch(seeded_app)
    with seeded_app.app_context():
        record = get_session().scalar(select(InboundMail).where(InboundMail.sender == "bug@client.example"))
        assert record.disposition == MailDisposition.QUARANTINED and "ValueError: a bug" in record.reason
        assert b"bug@client.example" in record.raw
    assert len(tickets_of(seeded_app, "fine@client.example")) == 1 and mailbox.unprocessed() == 0


# ----- loops, rate, bad mail ---------------------------------------------------------------------------------------


def test_a_sender_over_the_rate_is_held_back_in_the_quarantine(mailbox, seeded_app):
    seeded_app.config["MESA_MAIL_IN_RATE"] = 2
    for number in range(3):
        mailbox.deliver(mail("storm@client.example", f"Problem {number}", "again"))
    fetch(seeded_app)
    assert len(tickets_of(seeded_app, "storm@client.example")) == 2
    with seeded_app.app_context():
        held = get_session().scalar(select(InboundMail).where(InboundMail.disposition == MailDisposition.QUARANTINED))
        assert held.sender == "storm@client.example" and "over the rate" in held.reason
        ticket_id = tickets_of(seeded_app, "storm@client.example")[0].id
    for number in range(3):  # an agent answering many tickets by mail is not held back
        mailbox.deliver(mail(ROLE_EMAILS[Role.AGENT_L1], f"[#{ticket_id}] reply {number}", f"answer {number}"))
    fetch(seeded_app)
    assert count(seeded_app, InboundMail, InboundMail.disposition == MailDisposition.REPLY) == 3


def test_every_corpus_mail_ends_as_a_ticket_a_refusal_or_a_quarantine_and_none_is_lost(mailbox, seeded_app):
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) >= 20
    for path in files:
        mailbox.deliver(path.read_bytes())
    big = mail("big.attachment@corpus.example", "A 20 MB attachment", "See the attached dump.")
    big.add_attachment(b"\0" * (20 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename="dump.bin")
    mailbox.deliver(big)
    fetch(seeded_app)
    assert mailbox.unprocessed() == 0
    with seeded_app.app_context():
        records = list(get_session().scalars(select(InboundMail).order_by(InboundMail.uid)))
        assert len(records) == len(files) + 1  # every delivered message recorded once
        got = {path.name[:2]: record.disposition.value for path, record in zip(files, records)}
        assert got == CORPUS_EXPECTED
        assert records[-1].disposition == MailDisposition.QUARANTINED and "too big" in records[-1].reason
        assert all(record.reason for record in records if record.disposition != MailDisposition.TICKET)
        by_file = dict(zip((path.name[:2] for path in files), records))
        html_ticket = by_file["02"].ticket
        assert "jams on every page" in html_ticket.description and "alert" not in html_ticket.description
        assert by_file["19"].ticket.subject == "Contraseña caducada en el portátil"
        assert by_file["20"].ticket.subject.startswith("¿Por qué no funciona la wifi?")
        assert [(a.filename, a.content_type) for a in get_session().scalars(select(Attachment).where(
            Attachment.ticket_id == by_file["18"].ticket_id))] == [("error.png", "image/png")]  # attached
        assert len(by_file["27"].ticket.subject) == 200
        assert "\x00" not in by_file["24"].ticket.description
        assert len(records[-1].raw) > 20 * 1024 * 1024  # kept whole, for the admin


def test_a_mail_far_over_the_limit_is_left_on_the_server_and_its_header_quarantined(mailbox, seeded_app):
    seeded_app.config["MESA_MAIL_IN_MAX_BYTES"] = 1000
    mailbox.deliver(mail("huge@client.example", "A huge log", "x" * 10_000))
    fetch(seeded_app)
    with seeded_app.app_context():
        record = get_session().scalar(select(InboundMail))
        assert record.disposition == MailDisposition.QUARANTINED and "stays on the server" in record.reason
        assert record.size > 10_000 and b"Subject: A huge log" in record.raw and b"x" * 100 not in record.raw
        assert record.sender == "huge@client.example"
    assert mailbox.unprocessed() == 0


# ----- the admin page and the .eml downloads ---------------------------------------------------------------------


def test_admins_list_download_and_discard_quarantined_mail(mailbox, seeded_app, client):
    mailbox.deliver(b"To: help@mesa.example\r\nSubject: Nobody sent this\r\n\r\nno From\r\n")
    fetch(seeded_app)
    with seeded_app.app_context():
        record_id = get_session().scalar(select(InboundMail.id))
    auth = AuthActions(client)
    auth.login(Role.AGENT_L2)
    assert client.get("/admin/mail").status_code == 403
    auth.logout()
    auth.login(Role.ADMIN)
    page = client.get("/admin/mail")
    assert "Nobody sent this" in page.text and "no sender address" in page.text
    download = client.get(f"/admin/mail/{record_id}.eml")
    assert download.data.startswith(b"To: help@mesa.example") and download.mimetype == "message/rfc822"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert client.post(f"/admin/mail/{record_id}/discard").status_code == 400  # no CSRF token
    client.post(f"/admin/mail/{record_id}/discard", data={"csrf_token": csrf_token_from(page.text)})
    with seeded_app.app_context():
        record = get_session().get(InboundMail, record_id)
        assert record.disposition == MailDisposition.DISCARDED and record.raw == b""
    assert mailbox.unprocessed() == 0


def test_releasing_a_mail_that_still_cannot_be_read_keeps_it_in_quarantine(mailbox, seeded_app, client):
    mailbox.deliver((CORPUS / "08-broken-mime-no-boundary.eml").read_bytes())
    fetch(seeded_app)
    with seeded_app.app_context():
        record_id = get_session().scalar(select(InboundMail.id))
    AuthActions(client).login(Role.ADMIN)
    page = client.get("/admin/mail")
    result = client.post(f"/admin/mail/{record_id}/release", data={"csrf_token": csrf_token_from(page.text)},
                         follow_redirects=True)
    assert "broken MIME" in result.text
    with seeded_app.app_context():
        assert get_session().get(InboundMail, record_id).disposition == MailDisposition.QUARANTINED


def test_the_original_mail_of_a_ticket_is_downloadable_by_its_requester_and_agents_only(mailbox, seeded_app,
                                                                                        client):
    mailbox.deliver(mail(CUSTOMER, "Cannot print", "The printer is offline."))
    fetch(seeded_app)
    [ticket] = tickets_of(seeded_app, CUSTOMER)
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket.id)
        url = f"/tickets/{ticket.id}/mail/{ticket.events[0].data['mail']}.eml"
        other = user_service.create_user(get_session(), "other@example.com", "Other", PASSWORD, Role.CUSTOMER)
        get_session().commit()
    auth = AuthActions(client)
    auth.login(Role.CUSTOMER)
    assert url in client.get(f"/tickets/{ticket.id}").text
    own = client.get(url)
    assert own.status_code == 200 and b"The printer is offline." in own.data
    auth.logout()
    page = client.get("/login")
    client.post("/login", data={"email": other.email, "password": PASSWORD, "csrf_token": csrf_token_from(page.text)})
    assert client.get(url).status_code == 404
    auth.logout()
    auth.login(Role.AGENT_L1)
    assert client.get(url).status_code == 200


# ----- in the serving process ----------------------------------------------------------------------------------


def test_the_serving_process_fetches_in_the_background_only_when_mail_in_is_on(mailbox, seeded_app):
    import time

    from portal.background import BackgroundJobs

    mailbox.deliver(mail("background@client.example", "Teams crashes", "On start."))
    jobs = BackgroundJobs(seeded_app)
    seeded_app.config["MESA_MAIL_IN"] = False
    jobs.ensure_started()
    try:
        assert "mail-in" not in jobs.jobs
    finally:
        jobs.stop()
    seeded_app.config["MESA_MAIL_IN"] = True
    jobs.ensure_started()
    try:
        assert "mail-in" in jobs.jobs
        deadline = time.monotonic() + 30
        while not tickets_of(seeded_app, "background@client.example") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        jobs.stop()
    assert len(tickets_of(seeded_app, "background@client.example")) == 1 and mailbox.unprocessed() == 0


def test_fetch_without_a_mailbox_says_so(seeded_app):
    result = seeded_app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code != 0 and "MESA_IMAP_HOST is not set" in result.output


def test_an_unreachable_mailbox_is_reported_and_nothing_is_lost(seeded_app):
    seeded_app.config.update(MESA_IMAP_HOST="127.0.0.1", MESA_IMAP_PORT=free_port(), MESA_IMAP_TLS="none",
                             MESA_IMAP_USER="x", MESA_IMAP_PASSWORD="y")
    result = seeded_app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code != 0 and "could not be read" in result.output


# ----- TLS ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["starttls", "imaps"])
def test_the_mailbox_is_read_over_tls_with_the_certificate_checked(mailbox, seeded_app, dovecot, mode):
    seeded_app.config.update(MESA_IMAP_TLS=mode, MESA_IMAP_CA_FILE=dovecot.certificate,
                             MESA_IMAP_PORT=dovecot.port if mode == "starttls" else dovecot.tls_port)
    mailbox.deliver(mail(f"{mode}@client.example", "Over TLS", "Secured."))
    fetch(seeded_app)
    assert len(tickets_of(seeded_app, f"{mode}@client.example")) == 1
    logins = [line for line in dovecot.log().splitlines() if "Login: user=<mesa>" in line]
    assert ", TLS," in logins[-1]  # the password went over TLS


def test_a_server_certificate_from_an_unknown_authority_is_refused_before_the_login(mailbox, seeded_app, dovecot):
    seeded_app.config.update(MESA_IMAP_TLS="imaps", MESA_IMAP_PORT=dovecot.tls_port, MESA_IMAP_CA_FILE="")
    mailbox.deliver(mail("untrusted@client.example", "Untrusted", "x"))
    result = seeded_app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code != 0 and "CERTIFICATE_VERIFY_FAILED" in result.output
    assert tickets_of(seeded_app, "untrusted@client.example") == [] and mailbox.unprocessed() == 1


def test_imap_without_tls_to_another_host_refuses_to_start(tmp_path):
    from portal import create_app

    with pytest.raises(RuntimeError, match="in clear"):
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_IMAP_HOST": "mail.example.com",
                    "MESA_IMAP_TLS": "none"})
