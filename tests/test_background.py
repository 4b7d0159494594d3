"""The e-mail sender and the desk sweep run as threads of each serving process, started once per process."""

import shutil
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import create_app
from portal.background import PeriodicJob
from portal.db import get_session
from portal.domain.models import OutboxMessage, OutboxStatus, Role, Ticket, utcnow
from portal.domain import tickets as svc
from tests.conftest import (POSTGRES_URL, AuthActions, make_test_app, mute_agent_mail, reset_schema, seed,
                            user_by_role)
from tests.test_mail_delivery import FakeSMTP
from tests.test_tickets_views import create_ticket

JOB_SETTINGS = {"MESA_BACKGROUND_JOBS": 1, "MESA_MAIL_POLL_SECONDS": 30, "MESA_SWEEP_INTERVAL": 1}


@pytest.fixture
def jobs_app(request, tmp_path, monkeypatch):
    """The seeded app with the background jobs on (as in production), SMTP to the fake server."""
    import portal.mailer

    if POSTGRES_URL:
        reset_schema(POSTGRES_URL)
        app = make_test_app(tmp_path, POSTGRES_URL, **JOB_SETTINGS)
        seed(app)
    else:
        template = request.getfixturevalue("seeded_sqlite_template")
        for name in ("mesa.db", "index.npz"):
            shutil.copyfile(template / name, tmp_path / name)
        app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}", **JOB_SETTINGS)
    app.config.update(MESA_SMTP_HOST="smtp.example.com", MESA_SMTP_STARTTLS=False)
    monkeypatch.setattr(FakeSMTP, "sent", [])
    monkeypatch.setattr(portal.mailer.smtplib, "SMTP", FakeSMTP)
    yield app
    app.extensions["mesa_background"].stop()
    app.extensions["mesa_engine"].dispose()


def wait_for(condition, timeout=15.0):
    """Poll ``condition`` until it holds (bounded; the jobs run in their own threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def mesa_threads():
    """The background jobs' threads alive in this process."""
    return sorted(t.name for t in threading.enumerate() if t.name in ("mesa-mail", "mesa-sweep") and t.is_alive())


def test_jobs_do_not_start_in_tests_unless_asked(client):
    before = mesa_threads()
    assert client.get("/").status_code == 200
    assert client.application.extensions["mesa_background"].running is False
    assert mesa_threads() == before


def test_a_created_ticket_is_mailed_by_the_processs_sender_right_after_the_request(jobs_app):
    client = jobs_app.test_client()
    AuthActions(client).login()
    jobs = jobs_app.extensions["mesa_background"]
    assert jobs.running and set(jobs.jobs) == {"mail", "sweep"}
    mute_agent_mail(jobs_app)  # the requester's mail only
    ticket_id, _ = create_ticket(client)
    # The poll interval is 30 s: the request woke its process's sender, so the mail goes at once.
    assert wait_for(lambda: len(FakeSMTP.sent) == 1, timeout=10), "the sender did not deliver the ticket's mail"
    assert f"#{ticket_id}".encode() in FakeSMTP.sent[0]
    with jobs_app.app_context():
        assert wait_for(lambda: get_session().scalar(select(OutboxMessage.status)) == OutboxStatus.SENT)


def test_the_sweep_job_escalates_without_anyone_opening_the_queue(jobs_app):
    with jobs_app.app_context():
        session = get_session()
        customer = user_by_role(session, Role.CUSTOMER)
        overdue = svc.create_ticket(session, customer, "VPN drops", "text", "vpn", 1, 1,
                                    jobs_app.extensions["mesa_sla"], now=utcnow() - timedelta(days=1))
        session.commit()
        overdue_id = overdue.id
    assert jobs_app.test_client().get("/healthz").status_code == 200  # any request starts the jobs

    def escalated():
        with jobs_app.app_context():
            return get_session().get(Ticket, overdue_id).level == 2

    assert wait_for(escalated), "the sweep job did not escalate the overdue ticket"


def test_jobs_start_once_per_process_and_again_in_a_forked_worker(jobs_app, monkeypatch):
    import portal.background

    jobs = jobs_app.extensions["mesa_background"]
    client = jobs_app.test_client()
    client.get("/healthz")
    first = dict(jobs.jobs)
    client.get("/healthz")
    assert jobs.jobs == first  # the same threads, not new ones
    real_pid = portal.background.os.getpid()
    monkeypatch.setattr(portal.background.os, "getpid", lambda: real_pid + 1)  # what a fork looks like
    assert jobs.running is False
    client.get("/healthz")
    assert jobs.running and all(jobs.jobs[name] is not first[name] for name in first)
    assert all(job.thread.is_alive() for job in jobs.jobs.values())
    for job in first.values():
        job.stop()


def test_a_failing_job_is_logged_and_runs_again(seeded_app, caplog):
    calls = []

    def flaky(app):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database blinked")

    job = PeriodicJob(seeded_app, "flaky", 0.05, flaky)
    job.thread.start()
    try:
        assert wait_for(lambda: len(calls) >= 2, timeout=5)
    finally:
        job.stop()
    assert "background job flaky failed" in caplog.text and "the database blinked" in caplog.text


@pytest.mark.parametrize("settings, message", [
    ({"MESA_BACKGROUND_JOBS": 2}, "MESA_BACKGROUND_JOBS=2 must be 1"),
    ({"MESA_SWEEP_INTERVAL": 0}, "MESA_SWEEP_INTERVAL=0 must be at least 1"),
    ({"MESA_MAIL_MAX_ATTEMPTS": -1}, "MESA_MAIL_MAX_ATTEMPTS=-1 must be at least 1"),
])
def test_bad_job_settings_are_refused_at_start(tmp_path, settings, message):
    with pytest.raises(RuntimeError, match=message):
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), **settings})


def test_job_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MESA_BACKGROUND_JOBS", "0")
    monkeypatch.setenv("MESA_SWEEP_INTERVAL", "300")
    app = create_app({"MESA_INSTANCE_DIR": str(tmp_path), "MESA_SECRET_KEY": "x" * 40})
    assert app.config["MESA_BACKGROUND_JOBS"] == 0 and app.config["MESA_SWEEP_INTERVAL"] == 300
    assert app.before_request_funcs.get(None, []).count(app.extensions["mesa_background"].ensure_started) == 0
