"""Background jobs inside each serving process: the e-mail sender, the desk sweep and (MESA_MAIL_IN) the
mailbox fetcher, each a daemon thread
that runs its job every few seconds.

With MESA_BACKGROUND_JOBS=1 they start on the first request a process serves, once per process id: a
server that forks its workers after loading the app (gunicorn --preload) starts them in every worker, not in
the parent whose threads a fork does not copy. They never start in commands or in tests unless asked. The jobs
themselves are safe to run in many processes at once (claims and leases in the database).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from flask import Flask, current_app

log = logging.getLogger(__name__)


def worker_id() -> str:
    """Who is working, as recorded in claims and leases: host, process id and thread."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{threading.current_thread().name}"[:80]


class PeriodicJob:
    """One daemon thread running ``work(app)`` every ``interval`` seconds (and at once when woken); a failure
    is logged and the job runs again at its next turn."""

    def __init__(self, app: Flask, name: str, interval: float, work):
        self.app, self.name, self.interval, self.work = app, name, interval, work
        self._wake, self._stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"mesa-{name}", daemon=True)

    def _loop(self) -> None:
        """Run, wait for the interval (or a wake-up), run again, until stopped."""
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    self.work(self.app)
            except Exception:
                log.exception("background job %s failed; it runs again in %s s", self.name, self.interval)
            self._wake.wait(self.interval)
            self._wake.clear()

    def wake(self) -> None:
        """Run the job now instead of at its next turn."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current run (tests)."""
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout)


def send_mail(app: Flask) -> None:
    """The sender's job: deliver every due outbox message."""
    from .db import get_session
    from .mailer import deliver_all_due

    deliver_all_due(get_session(), app.config, worker_id())


def sweep_desk(app: Flask) -> None:
    """The sweep's job: run the desk sweep unless another process ran it within the interval."""
    from .db import get_session
    from .desk_sweep import run_sweep

    report = run_sweep(get_session(), app, worker_id(), every=timedelta(seconds=app.config["MESA_SWEEP_INTERVAL"]))
    if report.escalated or report.closed or report.warned:
        log.info("desk sweep: escalated %s, closed %s, SLA warnings %s", report.escalated, report.closed,
                 report.warned)


def fetch_mail(app: Flask) -> None:
    """The mail-in job: fetch the help-desk mailbox unless another process did within the interval."""
    from .db import get_session
    from .mail_fetch import fetch

    report = fetch(get_session(), app, worker_id(), every=timedelta(seconds=app.config["MESA_MAIL_IN_INTERVAL"]))
    if report.processed:
        log.info("mail in: %s", dict(report.outcomes))


class BackgroundJobs:
    """The process's jobs, started once per process id."""

    def __init__(self, app: Flask):
        self.app = app
        self.jobs: dict[str, PeriodicJob] = {}
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the jobs if this process has not yet (cheap after the first call)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            config = self.app.config
            self.jobs = {"mail": PeriodicJob(self.app, "mail", config["MESA_MAIL_POLL_SECONDS"], send_mail),
                         "sweep": PeriodicJob(self.app, "sweep", config["MESA_SWEEP_INTERVAL"], sweep_desk)}
            if config["MESA_MAIL_IN"] and config["MESA_IMAP_HOST"]:
                self.jobs["mail-in"] = PeriodicJob(self.app, "mail-in", config["MESA_MAIL_IN_INTERVAL"], fetch_mail)
            for job in self.jobs.values():
                job.thread.start()
            self._pid = os.getpid()
            log.info("background jobs started in process %s: %s", self._pid, ", ".join(self.jobs))

    @property
    def running(self) -> bool:
        """Whether this process runs the jobs."""
        return self._pid == os.getpid()

    def wake(self, name: str) -> None:
        """Run a job of this process now (nothing when the jobs do not run here)."""
        if self.running and name in self.jobs:
            self.jobs[name].wake()

    def stop(self) -> None:
        """Stop this process's jobs (tests)."""
        with self._lock:
            for job in self.jobs.values():
                job.stop()
            self.jobs, self._pid = {}, None


def request_delivery() -> None:
    """Called after a request committed outbox messages: this process's sender sends them now."""
    jobs = current_app.extensions.get("mesa_background")
    if jobs is not None:
        jobs.wake("mail")


def check_settings(config) -> None:
    """Refuse settings the jobs cannot run with, at start."""
    if config["MESA_BACKGROUND_JOBS"] not in (0, 1):
        raise RuntimeError(f"MESA_BACKGROUND_JOBS={config['MESA_BACKGROUND_JOBS']!r} must be 1 (run the e-mail "
                           "sender and the desk sweep in the serving processes) or 0 (do not; use cron)")
    for name in ("MESA_MAIL_POLL_SECONDS", "MESA_SWEEP_INTERVAL", "MESA_MAIL_MAX_ATTEMPTS", "MESA_MAIL_IN_INTERVAL",
                 "MESA_MAIL_IN_MAX_BYTES", "MESA_MAIL_IN_RATE", "MESA_PASSWORD_RESET_HOURS"):
        if config[name] < 1:
            raise RuntimeError(f"{name}={config[name]!r} must be at least 1")
    from .sla_warnings import check_warning_share

    check_warning_share(config["MESA_SLA_WARNING_AT"])


def check_mail_in_settings(config) -> None:
    """Refuse, at start, an IMAP password sent in clear to another host (MESA_IMAP_TLS=none)."""
    if config["MESA_IMAP_HOST"] and config["MESA_IMAP_TLS"] == "none" and \
            config["MESA_IMAP_HOST"] not in ("127.0.0.1", "::1", "localhost"):
        raise RuntimeError(f"MESA_IMAP_TLS=none would send the IMAP password in clear to {config['MESA_IMAP_HOST']}; "
                           "use imaps or starttls (none is only for a server on this host)")


def init_app(app: Flask) -> None:
    """Check the settings; with MESA_BACKGROUND_JOBS=1, start the jobs on each process's first request."""
    check_settings(app.config)
    check_mail_in_settings(app.config)
    jobs = BackgroundJobs(app)
    app.extensions["mesa_background"] = jobs
    if app.config["MESA_BACKGROUND_JOBS"]:
        app.before_request(jobs.ensure_started)
