"""E-mail leaves through the outbox, outside requests: claimed once, retried with backoff, failures shown to admins."""

import smtplib
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.db import get_session
from portal.domain import outbox
from portal.domain.models import OutboxMessage, OutboxStatus, Role, utcnow
from portal.mailer import deliver_all_due
from tests.conftest import csrf_token_from, mute_agent_mail
from tests.test_tickets_views import EN, REQUEST, agent_post, create_ticket


class FakeSMTP:
    """Stands in for smtplib.SMTP: writes each e-mail as the real one would, and keeps it."""

    sent: list = []
    connections: int = 0

    def __init__(self, host, port, timeout=None):
        self.host = host
        type(self).connections += 1

    def starttls(self):
        pass

    def login(self, user, password):
        pass

    def send_message(self, email):
        self.sent.append(email.as_bytes())

    def quit(self):
        pass

    def close(self):
        pass


@pytest.fixture(autouse=True)
def requester_mail_only(seeded_app):
    """These tests count the requester's mails: the agents' notifications are off."""
    mute_agent_mail(seeded_app)


@pytest.fixture
def smtp(seeded_app, monkeypatch):
    """SMTP configured, with the fake server; the e-mails it received."""
    import portal.mailer

    seeded_app.config.update(MESA_SMTP_HOST="smtp.example.com", MESA_SMTP_STARTTLS=False)
    monkeypatch.setattr(FakeSMTP, "sent", [])
    monkeypatch.setattr(FakeSMTP, "connections", 0)
    monkeypatch.setattr(portal.mailer.smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


def deliver(app, holder="test-sender"):
    """One run of the sender, as its background thread or `flask mail send-outbox` does it."""
    with app.app_context():
        return deliver_all_due(get_session(), app.config, holder)


def messages(app):
    with app.app_context():
        return list(get_session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def make_due_again(app):
    """Time passes: every pending message's next attempt is due."""
    with app.extensions["mesa_engine"].begin() as connection:
        connection.execute(update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def test_a_request_only_writes_the_outbox_and_the_sender_delivers_it(client, auth, seeded_app, smtp):
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    assert smtp.sent == [] and smtp.connections == 0  # nothing was sent inside the request
    [waiting] = messages(seeded_app)
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 0 and waiting.ticket_id == ticket_id
    report = deliver(seeded_app)
    assert (report.sent, report.failed, report.retrying) == (1, 0, 0)
    assert len(smtp.sent) == 1 and f"#{ticket_id}".encode() in smtp.sent[0]
    [sent] = messages(seeded_app)
    assert sent.status == OutboxStatus.SENT and sent.sent_at is not None and sent.attempts == 1
    assert deliver(seeded_app).sent == 0 and len(smtp.sent) == 1  # sent once


def test_without_an_smtp_host_messages_only_wait_in_the_outbox(client, auth, seeded_app, monkeypatch):
    import portal.mailer

    monkeypatch.setattr(portal.mailer.smtplib, "SMTP", None)  # would fail if anything tried to connect
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    assert deliver(seeded_app).claimed == 0
    [waiting] = messages(seeded_app)
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 0
    auth.logout()
    auth.login(Role.ADMIN)
    page = client.get("/admin/outbox", headers=EN)
    assert "notifications are only kept here" in page.text and "waiting" in page.text
    result = seeded_app.test_cli_runner().invoke(args=["mail", "send-outbox"])
    assert result.exit_code == 1 and "MESA_SMTP_HOST is not set" in result.output and "1 waiting" in result.output


def test_a_message_that_can_never_be_sent_fails_at_once_and_never_blocks_the_others(client, auth, seeded_app,
                                                                                      smtp):
    with seeded_app.app_context():  # written before the form refused line breaks, or by any other way in
        get_session().add(OutboxMessage(recipient="customer@example.com", subject="[#0] Printer\nBcc: x@evil.com",
                                        body="Hello"))
        get_session().commit()
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    assert agent_post(client, ticket_id, "reply", {"body": "On it", "visibility": "public"}).status_code == 302
    report = deliver(seeded_app)
    assert (report.sent, report.failed, report.retrying) == (2, 1, 0)
    assert len(smtp.sent) == 2 and not any(b"evil" in mail for mail in smtp.sent)
    bad = messages(seeded_app)[0]
    assert bad.status == OutboxStatus.FAILED and bad.attempts == 1 and "line" in bad.last_error


def test_a_server_that_cannot_be_reached_costs_an_attempt_and_the_message_waits(client, auth, seeded_app, smtp,
                                                                                 monkeypatch):
    def unreachable(self, host, port, timeout=None):
        raise ConnectionRefusedError("no server")

    monkeypatch.setattr(FakeSMTP, "__init__", unreachable)
    seeded_app.config.update(MESA_MAIL_MAX_ATTEMPTS=3)
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    before = utcnow()
    report = deliver(seeded_app)
    assert report.stopped and report.retrying == 1 and report.sent == 0
    [waiting] = messages(seeded_app)
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 1
    assert "ConnectionRefusedError: no server" in waiting.last_error
    assert before + timedelta(seconds=55) < waiting.next_attempt_at < utcnow() + timedelta(seconds=65)
    assert deliver(seeded_app).claimed == 0  # not due before its backoff
    make_due_again(seeded_app)
    deliver(seeded_app)
    assert messages(seeded_app)[0].attempts == 2
    assert messages(seeded_app)[0].next_attempt_at > utcnow() + timedelta(seconds=115)  # 2 minutes now
    make_due_again(seeded_app)
    assert deliver(seeded_app).failed == 1
    [failed] = messages(seeded_app)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 3
    assert client.get(f"/tickets/{ticket_id}").status_code == 200


def test_retry_waits_grow_to_at_most_an_hour():
    assert [outbox.retry_delay(n).total_seconds() / 60 for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("code, status", [(450, OutboxStatus.PENDING), (550, OutboxStatus.FAILED)])
def test_a_refused_recipient_is_retried_only_when_the_refusal_is_temporary(client, auth, seeded_app, smtp,
                                                                           monkeypatch, code, status):
    def refuse(self, email):
        raise smtplib.SMTPRecipientsRefused({"customer@example.com": (code, b"mailbox unavailable")})

    monkeypatch.setattr(FakeSMTP, "send_message", refuse)
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    deliver(seeded_app)
    [message] = messages(seeded_app)
    assert message.status == status and message.attempts == 1 and "SMTPRecipientsRefused" in message.last_error


def test_a_bug_in_delivery_never_escapes_and_the_message_waits(client, auth, seeded_app, smtp, monkeypatch):
    def broken(self, email):
        raise RuntimeError("a bug in delivery")

    monkeypatch.setattr(FakeSMTP, "send_message", broken)
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    assert deliver(seeded_app).stopped
    [message] = messages(seeded_app)
    assert message.status == OutboxStatus.PENDING and "a bug in delivery" in message.last_error


def test_of_two_senders_at_the_same_moment_only_one_sends_each_message(client, auth, seeded_app, smtp,
                                                                       monkeypatch):
    auth.login(Role.CUSTOMER)
    for subject in ("Printer queue stuck", "Scanner offline", "Toner low"):
        create_ticket(client, {**REQUEST, "subject": subject})
    send = FakeSMTP.send_message
    second_sender_reports, started = [], []

    def send_while_another_host_delivers(self, email):
        if not started:  # in the middle of the first send, another process runs its sender
            started.append(True)
            second_sender_reports.append(deliver(seeded_app, holder="other-host:42:mesa-mail"))
        send(self, email)

    monkeypatch.setattr(FakeSMTP, "send_message", send_while_another_host_delivers)
    first = deliver(seeded_app, holder="this-host:7:mesa-mail")
    [second] = second_sender_reports
    assert first.sent + second.sent == 3 and len(smtp.sent) == 3
    assert first.sent >= 1 and second.sent >= 1  # both worked, on different messages
    assert len({mail.split(b"Subject: ")[1].split(b"\n")[0] for mail in smtp.sent}) == 3
    assert all(m.status == OutboxStatus.SENT and m.attempts == 1 for m in messages(seeded_app))


def test_a_claim_is_taken_by_exactly_one_holder_and_expires_if_the_holder_dies(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        message = OutboxMessage(recipient="a@example.com", subject="Hi", body="Hi")
        session.add(message)
        session.commit()
        now = utcnow()
        assert outbox.claim(session, message.id, "a", now) is True
        assert outbox.claim(session, message.id, "b", now) is False
        session.commit()
        later = now + outbox.CLAIM_HOLD + timedelta(seconds=1)  # "a" died mid-send
        assert outbox.claim(session, message.id, "b", later) is True
        assert outbox.record_sent(session, message.id, "a", later) is False  # too late: "b" has it
        assert outbox.record_sent(session, message.id, "b", later) is True
        session.commit()
        session.refresh(message)
        assert message.status == OutboxStatus.SENT and message.attempts == 2


def test_admins_see_failed_messages_and_send_them_again(client, auth, seeded_app, smtp, monkeypatch):
    def refuse(self, email):
        raise smtplib.SMTPDataError(554, b"message rejected")

    monkeypatch.setattr(FakeSMTP, "send_message", refuse)
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    deliver(seeded_app)
    [failed] = messages(seeded_app)
    assert failed.status == OutboxStatus.FAILED
    auth.logout()
    auth.login(Role.ADMIN)
    page = client.get("/admin/outbox?status=failed", headers=EN)
    assert f'data-message="{failed.id}" data-status="failed"' in page.text
    assert "Last error: SMTPDataError: (554, b&#39;message rejected&#39;)" in page.text and "1 attempt" in page.text
    assert f'action="/admin/outbox/{failed.id}/retry"' in page.text
    assert "failed (1)" in page.text
    monkeypatch.setattr(FakeSMTP, "send_message", lambda self, email: FakeSMTP.sent.append(email.as_bytes()))
    retried = client.post(f"/admin/outbox/{failed.id}/retry", headers=EN,
                          data={"csrf_token": csrf_token_from(page.text)})
    assert retried.status_code == 302
    [queued] = messages(seeded_app)
    assert queued.status == OutboxStatus.PENDING and queued.attempts == 0
    assert "queued to be sent again" in client.get("/admin/outbox", headers=EN).text
    assert deliver(seeded_app).sent == 1 and messages(seeded_app)[0].status == OutboxStatus.SENT
    again = client.post(f"/admin/outbox/{failed.id}/retry", headers=EN,
                        data={"csrf_token": csrf_token_from(page.text)}, follow_redirects=True)
    assert "Only a failed message can be sent again; this one is sent." in again.text
    assert client.post(f"/admin/outbox/{failed.id}/retry", headers=EN).status_code == 400  # no CSRF token
    assert client.post("/admin/outbox/99999/retry", headers=EN,
                       data={"csrf_token": csrf_token_from(page.text)}).status_code == 404


def test_send_outbox_command_delivers_and_reports(client, auth, seeded_app, smtp):
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    result = seeded_app.test_cli_runner().invoke(args=["mail", "send-outbox"])
    assert result.exit_code == 0, result.output
    assert "Sent 1, failed 0, will retry 0; 0 pending, 0 failed in the outbox." in result.output
    assert len(smtp.sent) == 1


def test_send_outbox_command_fails_loudly_when_the_server_is_down(client, auth, seeded_app, smtp, monkeypatch):
    def unreachable(self, host, port, timeout=None):
        raise TimeoutError("timed out")

    monkeypatch.setattr(FakeSMTP, "__init__", unreachable)
    auth.login(Role.CUSTOMER)
    create_ticket(client)
    result = seeded_app.test_cli_runner().invoke(args=["mail", "send-outbox"])
    assert result.exit_code == 1 and "will retry 1; 1 pending" in result.output
    assert "could not be used" in result.output


def test_the_outbox_migration_keeps_what_old_rows_said(tmp_path):
    from alembic import command
    from sqlalchemy import MetaData, create_engine, insert

    from portal import create_app
    from portal.db import alembic_config, upgrade_database
    from portal.domain.models import Base
    from tests.conftest import POSTGRES_URL

    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_DATABASE_URL": url})
    command.upgrade(alembic_config(app), "0006")
    tables = MetaData()
    tables.reflect(engine)
    now = utcnow()
    with engine.begin() as connection:
        for subject, sent_at, error in (("sent", now, ""), ("failed", None, "ValueError: line"),
                                        ("waiting", None, "")):
            connection.execute(insert(tables.tables["outbox"]).values(
                recipient="a@example.com", subject=subject, body="x", created_at=now, sent_at=sent_at, error=error))
    upgrade_database(app)
    with app.app_context():
        rows = {m.subject: m for m in get_session().scalars(select(OutboxMessage))}
        assert {s: (m.status, m.attempts, m.last_error) for s, m in rows.items()} == {
            "sent": (OutboxStatus.SENT, 1, ""), "failed": (OutboxStatus.FAILED, 1, "ValueError: line"),
            "waiting": (OutboxStatus.PENDING, 0, "")}
        assert rows["waiting"].next_attempt_at == rows["waiting"].created_at
    command.downgrade(alembic_config(app), "0006")
    upgrade_database(app)  # and back: the round trip works on this database
    engine.dispose()
    app.extensions["mesa_engine"].dispose()
