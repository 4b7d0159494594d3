"""The production server: gunicorn's settings come from MESA_*, and it really serves Mesa with its workers,
the request log in its error log (a live server on 127.0.0.1, stopped at the end)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal import create_app
from portal.gunicorn_conf import library_thread_env, server_settings
from tests.conftest import POSTGRES_URL, ROOT

GUNICORN = Path(sys.executable).parent / "gunicorn"
START_TIMEOUT_S = 60


def test_the_server_settings_come_from_the_mesa_settings():
    settings = server_settings({"MESA_BIND": "0.0.0.0:8000", "MESA_WORKERS": "3", "MESA_THREADS": "8"})
    assert settings == {"bind": ["0.0.0.0:8000"], "workers": 3, "threads": 8, "worker_class": "gthread"}


def test_by_default_two_threaded_workers_listen_on_loopback():
    assert server_settings({}) == {"bind": ["127.0.0.1:5000"], "workers": 2, "threads": 4,
                                   "worker_class": "gthread"}


def test_one_thread_runs_plain_sync_workers():
    assert server_settings({"MESA_THREADS": "1"})["worker_class"] == "sync"


@pytest.mark.parametrize("name", ["MESA_WORKERS", "MESA_THREADS"])
def test_no_workers_or_threads_refuses_to_start(name):
    with pytest.raises(RuntimeError, match=f"{name}=0 must be at least 1"):
        server_settings({name: "0"})


def test_the_app_is_not_preloaded_in_the_master():
    import portal.gunicorn_conf as conf

    assert conf.preload_app is False and conf.control_socket_disable is True


def test_openmp_threads_sleep_while_they_wait_unless_the_operator_says_otherwise():
    assert library_thread_env({}) == ["OMP_WAIT_POLICY=PASSIVE"]
    assert library_thread_env({"OMP_WAIT_POLICY": "ACTIVE"}) == ["OMP_WAIT_POLICY=ACTIVE"]


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's journal mode")
def test_on_sqlite_a_worker_commits_while_another_is_reading(app):
    """Write-ahead logging: an open read (another worker rendering a page) does not block a commit."""
    engine = app.extensions["mesa_engine"]
    reader, writer = engine.raw_connection(), engine.raw_connection()
    try:
        writer.execute("PRAGMA busy_timeout=100")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM users").fetchall()
        writer.execute("INSERT INTO teams (name, categories) VALUES ('written during a read', '[]')")
        writer.commit()  # in SQLite's default journal mode: "database is locked" after 100 ms
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        reader.close()
        writer.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen) -> None:
    """Return once the server answers; fail when it exits or does not answer in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within {START_TIMEOUT_S} s")


@pytest.fixture
def gunicorn_server(seeded_sqlite_template, tmp_path):
    """gunicorn with Mesa's configuration on a free loopback port over a copy of the seeded database:
    yields (base URL, path of its error log)."""
    for name in ("mesa.db", "index.npz"):
        shutil.copyfile(seeded_sqlite_template / name, tmp_path / name)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {**os.environ, "MESA_ENV": "development", "MESA_INSTANCE_DIR": str(tmp_path / "instance"),
           "MESA_DATABASE_URL": f"sqlite:///{tmp_path / 'mesa.db'}", "MESA_INDEX_PATH": str(tmp_path / "index.npz"),
           "MESA_RANKING": "fake", "MESA_EMBEDDER_MODEL": "", "MESA_BIND": f"127.0.0.1:{port}",
           "MESA_WORKERS": "2", "MESA_THREADS": "2", "HF_HUB_OFFLINE": "1",
           **load_bench().RAISED_LIMITS}
    with log_path.open("wb") as log:
        server = subprocess.Popen([str(GUNICORN), "-c", "python:portal.gunicorn_conf", "portal.wsgi:app"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url + "/", server)
        yield url, log_path
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_gunicorn_serves_mesa_with_two_workers_and_logs_each_request(gunicorn_server):
    url, log_path = gunicorn_server
    request = urllib.request.Request(url + "/api/search?q=printer", headers={"X-Request-ID": "probe-1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and response.headers["X-Request-ID"] == "probe-1"
        assert json.loads(response.read())["results"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "probe-1" not in log_path.read_text(errors="replace"):
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")
    assert "Using worker: gthread" in log and log.count("Booting worker with pid") == 2
    [line] = [json.loads(text[text.index("{"):]) for text in log.splitlines() if '"probe-1"' in text]
    assert line["route"] == "/api/search" and line["status"] == 200 and line["user_id"] == "-"


def test_gunicorn_names_no_version_and_sends_the_security_headers(gunicorn_server):
    url, _ = gunicorn_server
    with urllib.request.urlopen(url + "/login", timeout=30) as response:
        server = response.headers.get("Server", "")
        assert not any(character.isdigit() for character in server), f"Server header tells a version: {server}"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def load_bench():
    """bench/load.py as a module."""
    import importlib.util

    if "bench_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_load"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_load"]


def test_the_load_bench_client_signs_in_creates_tickets_and_counts_them_through_gunicorn(gunicorn_server,
                                                                                            tmp_path):
    import asyncio
    import concurrent.futures
    import random

    from sqlalchemy import func, select

    from portal.db import get_session
    from portal.domain.models import Role, Ticket
    from tests.conftest import PASSWORD, ROLE_EMAILS

    bench = load_bench()
    url, _ = gunicorn_server
    port = int(url.rsplit(":", 1)[1])

    async def load():
        client = bench.Client(port, max_connections=4)
        customer = bench.Customer(ROLE_EMAILS[Role.CUSTOMER], PASSWORD)
        await customer.sign_in(client)
        work = bench.Workload(client, customer, ["printer", "vpn no conecta"], ["add-a-printer"],
                              random.Random(1), "test")
        recorder, _ = await bench.closed_loop(work, {"suggest": 1, "search": 1, "article": 1, "ticket": 1}, 2, 1.5)
        client.close()
        return recorder

    # In a thread of its own: another test's library (Playwright) may have left an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        recorder = thread.submit(asyncio.run, load()).result()
    assert sum(recorder.errors.values()) == 0, recorder.error_examples
    assert all(recorder.latencies[kind] for kind in bench.KINDS)
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path / "instance"),
                      "MESA_DATABASE_URL": f"sqlite:///{tmp_path / 'mesa.db'}"})
    with app.app_context():
        subjects = set(get_session().scalars(select(Ticket.subject)))
        assert get_session().scalar(select(func.count(Ticket.id))) == len(recorder.ticket_ids)
    app.extensions["mesa_engine"].dispose()
    assert all(subject.startswith(bench.TICKET_SUBJECT) for subject in subjects)
    assert bench.bench_tickets(app).keys() == set(recorder.ticket_ids)


def test_the_load_bench_tells_a_lost_ticket_from_one_its_client_gave_up_on():
    bench = load_bench()
    kept = bench.ticket_check(before=3, after=6, confirmed=[4, 5], in_database={4: "a", 5: "b", 6: "c"})
    assert kept["none_lost"] and not kept["count_matches"] and kept["created_unconfirmed"] == [6]
    lost = bench.ticket_check(before=3, after=4, confirmed=[4, 5], in_database={4: "a"})
    assert not lost["none_lost"] and lost["lost"] == [5]
    exact = bench.ticket_check(before=0, after=2, confirmed=[1, 2], in_database={1: "a", 2: "b"})
    assert exact["none_lost"] and exact["count_matches"]


def test_the_load_bench_offers_requests_at_the_asked_rates_within_the_phase():
    import random

    bench = load_bench()
    due = bench.arrivals({"suggest": 100.0, "ticket": 2.0}, 10.0, random.Random(3))
    assert due == sorted(due) and all(0 <= moment < 10.0 for moment, _ in due)
    counts = {kind: sum(1 for _, k in due if k == kind) for kind in ("suggest", "ticket")}
    assert 900 <= counts["suggest"] <= 1100 and 5 <= counts["ticket"] <= 40
    assert bench.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0 and bench.percentile([], 0.5) is None
    assert bench.percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
