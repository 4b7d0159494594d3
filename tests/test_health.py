"""`/healthz` tells a load balancer whether a process can serve, cheaply and without leaking anything."""

import socket
from datetime import timedelta

from portal.db import get_session
from portal.domain.models import OutboxMessage, OutboxStatus, utcnow
from tests.conftest import make_test_app


def test_a_healthy_process_answers_200_with_every_check(seeded_app):
    seeded_app.config.update(MESA_SMTP_HOST="smtp.internal.example.com", MESA_SMTP_PASSWORD="hunter2-secret")
    response = seeded_app.test_client().get("/healthz")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok"
    database, outbox, index = body["checks"]["database"], body["checks"]["outbox"], body["checks"]["search_index"]
    assert database["ok"] and database["reachable"] and 0 <= database["latency_ms"] < 5000
    assert outbox == {"ok": True, "pending": 0, "failed": 0, "oldest_pending_seconds": None, "sending": True}
    assert index["ok"] and index["built"] and index["change"] > 0 and index["reload_failed"] is False
    assert "Set-Cookie" not in response.headers  # no session for a probe
    for secret in ("smtp.internal.example.com", "hunter2", str(seeded_app.instance_path), "mesa.db",
                   socket.gethostname()):
        assert secret not in response.text


def test_the_outbox_backlog_counts_pending_and_failed_messages_and_the_oldest_age(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        now = utcnow()
        session.add_all([
            OutboxMessage(recipient="a@example.com", subject="old", body="x", created_at=now - timedelta(minutes=10)),
            OutboxMessage(recipient="a@example.com", subject="new", body="x", created_at=now - timedelta(minutes=1)),
            OutboxMessage(recipient="a@example.com", subject="gave up", body="x", status=OutboxStatus.FAILED,
                          created_at=now - timedelta(days=2)),
            OutboxMessage(recipient="a@example.com", subject="done", body="x", status=OutboxStatus.SENT,
                          created_at=now - timedelta(days=3), sent_at=now)])
        session.commit()
    outbox = seeded_app.test_client().get("/healthz").get_json()["checks"]["outbox"]
    assert outbox["pending"] == 2 and outbox["failed"] == 1 and outbox["sending"] is False
    assert 600 <= outbox["oldest_pending_seconds"] < 660
    assert outbox["ok"] is True  # a backlog is for admins to see, not a reason to stop serving


def test_an_unreachable_database_answers_503_without_saying_where_it_is(tmp_path):
    unreachable = tmp_path / "no-such-directory" / "mesa.db"
    app = make_test_app(tmp_path, f"sqlite:///{unreachable}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": False, "reachable": False}
    assert body["checks"]["outbox"] == {"ok": False, "readable": False}
    assert "no-such-directory" not in response.text and "sqlite" not in response.text.lower()
    app.extensions["mesa_engine"].dispose()


def test_the_index_check_says_whether_this_process_has_it_and_how_far_behind_it_is(seeded_app, tmp_path):
    fresh = make_test_app(tmp_path / "fresh-process", seeded_app.config["MESA_DATABASE_URL"])
    client = fresh.test_client()
    before = client.get("/healthz").get_json()["checks"]["search_index"]
    assert before["loaded"] is False and before["behind"] is None  # a probe never loads the index
    client.get("/api/search?q=vpn")
    after = client.get("/healthz").get_json()["checks"]["search_index"]
    assert after["loaded"] is True and after["behind"] == 0 and after["generation"] == before["generation"]
    fresh.extensions["mesa_engine"].dispose()


def test_a_missing_index_degrades_but_keeps_the_process_in_service(seeded_app):
    from portal.domain import search_index

    with seeded_app.app_context():
        session = get_session()
        search_index.drop_generations(session, [search_index.active_generation(session).id])
        session.commit()
    response = seeded_app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["checks"]["search_index"]["ok"] is False
    assert body["checks"]["search_index"]["built"] is False
    assert body["checks"]["database"]["ok"]


def test_checks_are_a_registry_and_a_check_that_raises_counts_as_failed(seeded_app):
    def queue_check():
        raise RuntimeError("boom")

    seeded_app.extensions["mesa_health"].append(lambda: ("custom", {"lag": 3}, True))
    seeded_app.extensions["mesa_health"].append(queue_check)
    response = seeded_app.test_client().get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["custom"] == {"ok": True, "lag": 3} and checks["queue"] == {"ok": False}
    assert "boom" not in response.text
