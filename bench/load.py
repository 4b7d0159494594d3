"""Load through the production server on 127.0.0.1: `make bench-load` (about 5 minutes on 2 cores, half of
it building the index).

Prepares a throwaway instance (its own SQLite database: `flask db upgrade`, `kb import`, `index build` with
MESA_RANKING or the default ranking, the demo accounts and a bench customer), starts Mesa under gunicorn
with 2 workers (portal/gunicorn_conf.py) on a free loopback port, warms every worker, then runs four bounded
phases of one mix of requests: suggestions while a customer types (`/api/suggest`), searches (`/api/search`),
article pages, and tickets created by the signed-in customer through the ask-for-help form (CSRF token).

0. **Sequential** (a third as long): one request at a time, the cost of one request on the machine as it is.
1. **Saturation** (closed loop): one virtual user per server thread sends its next request as soon as the
   last one answered: what the server sustains.
2. **Sustained** (open loop): requests arrive at 70% of the suggestion rate reached at saturation (the other
   kinds in proportion), whether or not earlier ones have finished.
3. **Goal** (open loop): suggestions offered at the goal, 150/s. Last, because it may overload the server.

In the open-loop phases latency runs from when a request was due, so time spent waiting because the server
fell behind counts (no coordinated omission); a request that could not be sent within 10 s of being due is an
error and never reaches the server, so an overloaded server is not left a backlog nobody waits for. For each
kind: requests, errors, requests/s, p50 / p95 / p99 seen by the client, and the server's own duration (from
its request log). Then the ticket check: tickets after = before + created, every confirmed ticket found by
its subject. The goal (issue 14): >= 150 suggestions/s with p95 <= 50 ms and no error.

The client is a small asyncio HTTP/1.1 client with keep-alive (no dependency): it costs little CPU on the
cores it shares with the server (its CPU time is reported), schedules arrivals exactly, and counts every
failure. Loopback only; every phase is bounded in time and every request by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
STARTER_QUERIES = ROOT / "bench" / "starter" / "queries.jsonl"
HOST = "127.0.0.1"
KINDS = ("suggest", "search", "article", "ticket")
# The offered load of phase 1, requests per second; phase 2 draws the same mix in these proportions.
RATES = {"suggest": 150.0, "search": 15.0, "article": 15.0, "ticket": 1.0}
GOAL = {"kind": "suggest", "rate": 150.0, "p95_ms": 50.0}
CUSTOMER_EMAIL = "load-customer@bench.example"
CUSTOMER_PASSWORD = "load bench password"
USER_AGENT = "mesa-bench-load/1"
REQUEST_TIMEOUT_S = 10.0
TICKET_TIMEOUT_S = 30.0  # longer: the client should hear about every ticket the server creates
TICKET_SUBJECT = "Load bench ticket"
# Requests in flight at once, as a multiple of the server's threads: enough to keep every thread busy, few
# enough that an overloaded server is not left a long backlog of requests whose client has given up (a
# request still waiting here when its timeout ends is an error and never sent).
IN_FLIGHT_PER_THREAD = 2
KEEPALIVE_REUSE_S = 1.5  # below gunicorn's keep-alive timeout (2 s)
START_TIMEOUT_S = 120


# --- the throwaway instance and the server --------------------------------------------------------------

def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# The simulated customers all come from 127.0.0.1: the per-address limits would answer 429 to most of them.
# Raised so the bench measures the search path (the counter's upsert included).
RAISED_LIMITS = {"MESA_SEARCH_LIMIT_ADDRESS": "1000000/60", "MESA_SEARCH_LIMIT_VISITOR": "1000000/60",
                 "MESA_FEEDBACK_LIMIT_ADDRESS": "1000000/60"}


def instance_env(workdir: Path, ranking: str, port: int, workers: int) -> dict:
    """The environment of every command and of the server: the throwaway instance, no mail sent."""
    return {**os.environ, "MESA_ENV": "development", "MESA_INSTANCE_DIR": str(workdir / "instance"),
            "MESA_DATABASE_URL": f"sqlite:///{workdir / 'instance' / 'mesa.db'}", "MESA_INDEX_PATH": "",
            "MESA_RANKING": ranking, "MESA_SMTP_HOST": "", "MESA_BIND": f"{HOST}:{port}",
            "MESA_WORKERS": str(workers), "HF_HUB_OFFLINE": "1", **RAISED_LIMITS}


def flask(env: dict, *args: str) -> float:
    """Run one `flask --app portal` command on the instance; its duration in seconds."""
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "flask"), "--app", "portal", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def prepare_instance(env: dict) -> dict:
    """Database, starter KB, index and accounts, as `make run` prepares them; each step's seconds."""
    steps = {}
    for name, args in (("db upgrade", ("db", "upgrade")), ("kb import", ("kb", "import")),
                       ("index build", ("index", "build", "--quiet")), ("users demo", ("users", "demo")),
                       ("desk defaults", ("desk", "defaults")),
                       ("bench customer", ("users", "create", "--email", CUSTOMER_EMAIL, "--name", "Load Bench",
                                           "--role", "customer", "--password", CUSTOMER_PASSWORD))):
        steps[name] = round(flask(env, *args), 1)
    return steps


def start_server(env: dict, log_path: Path) -> subprocess.Popen:
    """gunicorn with Mesa's configuration, its error log (and so the request log) in ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen([str(BIN / "gunicorn"), "-c", "python:portal.gunicorn_conf", "portal.wsgi:app"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_serving(base_url: str, server: subprocess.Popen) -> None:
    """Return once the server answers its home page; SystemExit when it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            urllib.request.urlopen(base_url + "/", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {START_TIMEOUT_S} s")


def stop_server(server: subprocess.Popen) -> None:
    """Stop gunicorn gracefully (SIGTERM), killing it only if it does not exit."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def worker_pids(master: int) -> list[int]:
    """The pids of the gunicorn master's worker processes."""
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- reading the database of the instance ---------------------------------------------------------------

def instance_app(env: dict):
    """A Mesa app over the instance's database, for counting (no server, no model)."""
    from portal import create_app

    keys = ("MESA_ENV", "MESA_INSTANCE_DIR", "MESA_DATABASE_URL", "MESA_INDEX_PATH", "MESA_RANKING", "MESA_SMTP_HOST")
    return create_app({key: env[key] for key in keys})


def published_slugs(app) -> list[str]:
    """Slugs of the public published articles (what the article views open)."""
    from sqlalchemy import select

    from portal.db import get_session
    from portal.domain.models import Article

    with app.app_context():
        return list(get_session().scalars(select(Article.slug).where(Article.status == "published",
                                                                     Article.visibility == "public")))


def ticket_count(app) -> int:
    """How many tickets the database holds."""
    from sqlalchemy import func, select

    from portal.db import get_session
    from portal.domain.models import Ticket

    with app.app_context():
        return get_session().scalar(select(func.count(Ticket.id)))


# --- a small HTTP/1.1 client ----------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict
    body: bytes


class StaleConnection(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer came back."""


class NotSent(Exception):
    """The request waited for a free connection until its time was up, and was never sent."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.used = reader, writer, 0
        self.idle_since = time.monotonic()

    @classmethod
    async def open(cls, port: int) -> "Connection":
        """Connect to the server."""
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()

    async def request(self, method: str, target: str, headers: dict, body: bytes = b"") -> Response:
        """Send one request and read its answer (Content-Length or chunked)."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", f"User-Agent: {USER_AGENT}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        reused, self.used = self.used > 0, self.used + 1
        try:
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if reused and not getattr(exc, "partial", b""):
                raise StaleConnection() from exc
            raise
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        response_headers: dict[str, list[str]] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                response_headers.setdefault(name.strip().lower(), []).append(value.strip())
        if "chunked" in response_headers.get("transfer-encoding", [""])[0].lower():
            payload = await self._read_chunked()
        else:
            payload = await self.reader.readexactly(int(response_headers.get("content-length", ["0"])[0]))
        return Response(int(status_line.split()[1]), response_headers, payload)

    async def _read_chunked(self) -> bytes:
        """A chunked body."""
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class Client:
    """A pool of keep-alive connections; POSTs get a connection of their own, so one is never sent twice."""

    def __init__(self, port: int, max_connections: int):
        self.port = port
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.retried_stale = 0

    async def request(self, method: str, target: str, headers: dict | None = None, body: bytes = b"",
                      timeout: float = REQUEST_TIMEOUT_S, queue_timeout: float | None = None) -> Response:
        """One request, answered within ``timeout`` once sent (asyncio.TimeoutError); NotSent when no
        connection was free within ``queue_timeout``: a request the client could not send in time is not left
        to the server."""
        try:
            await asyncio.wait_for(self._slots.acquire(), queue_timeout)
        except asyncio.TimeoutError:
            raise NotSent(f"no free connection within {queue_timeout:.1f} s") from None
        try:
            return await asyncio.wait_for(self._exchange(method, target, dict(headers or {}), body), timeout)
        finally:
            self._slots.release()

    async def _exchange(self, method: str, target: str, headers: dict, body: bytes) -> Response:
        """Send and read back; a GET on a kept-alive connection the server had just closed is sent again once."""
        if method != "GET":
            connection = await Connection.open(self.port)
            try:
                return await connection.request(method, target, {**headers, "Connection": "close"}, body)
            finally:
                connection.close()
        for attempt in (1, 2):
            connection = self._idle_connection() if attempt == 1 else None
            connection = connection or await Connection.open(self.port)
            try:
                response = await connection.request(method, target, headers, body)
            except StaleConnection:
                connection.close()
                self.retried_stale += 1
                if attempt == 2:
                    raise
                continue
            except BaseException:
                connection.close()
                raise
            if "close" in response.headers.get("connection", [""])[0].lower():
                connection.close()
            else:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            return response
        raise AssertionError("unreachable")

    def _idle_connection(self) -> Connection | None:
        """The most recently used idle connection that the server still keeps open (gunicorn closes one idle
        for its keep-alive timeout, 2 s); older ones are closed here."""
        while self._idle:
            connection = self._idle.pop()
            if time.monotonic() - connection.idle_since < KEEPALIVE_REUSE_S:
                return connection
            connection.close()
        return None

    def close(self) -> None:
        """Close the idle connections."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class Customer:
    """A signed-in customer: the session cookie and the CSRF token of the ask-for-help form."""

    def __init__(self, email: str = CUSTOMER_EMAIL, password: str = CUSTOMER_PASSWORD):
        self.email, self.password = email, password
        self.cookies: dict[str, str] = {}
        self.csrf_token = ""

    def cookie_header(self) -> dict:
        """The Cookie header of the customer's next request."""
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def remember(self, response: Response) -> None:
        """Keep the cookies the server set."""
        for value in response.headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]

    async def sign_in(self, client: Client) -> None:
        """Sign in through the login form, then read the ask-for-help form's token."""
        page = await client.request("GET", "/login", self.cookie_header())
        self.remember(page)
        body = urllib.parse.urlencode({"email": self.email, "password": self.password,
                                       "csrf_token": csrf_token_in(page.body)}).encode()
        signed_in = await client.request("POST", "/login", {**self.cookie_header(), **FORM}, body)
        self.remember(signed_in)
        if signed_in.status != 302:
            raise SystemExit(f"the bench customer could not sign in ({signed_in.status})")
        form = await client.request("GET", "/help", self.cookie_header())
        self.remember(form)
        self.csrf_token = csrf_token_in(form.body)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def csrf_token_in(html: bytes) -> str:
    """The CSRF token of a page's first form."""
    match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise SystemExit("no CSRF token in the page")
    return match.group(1).decode()


# --- the requests, and what was seen ---------------------------------------------------------------------

@dataclass
class Recorder:
    """Latencies (ms) and errors per kind, and the ids of the tickets created."""

    latencies: dict = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: dict = field(default_factory=lambda: {kind: 0 for kind in KINDS})
    error_examples: list = field(default_factory=list)
    ticket_ids: list = field(default_factory=list)

    def failed(self, kind: str, reason: str) -> None:
        """Count an error (and keep the first few reasons)."""
        self.errors[kind] += 1
        if len(self.error_examples) < 10:
            self.error_examples.append(f"{kind}: {reason}")


@dataclass
class Workload:
    """What the requests are made of."""

    client: Client
    customer: Customer
    queries: list[str]
    slugs: list[str]
    rng: random.Random
    phase: str
    sequence: int = 0

    def request_id(self) -> str:
        """An X-Request-ID that says the phase, so the server's log can be split by phase."""
        self.sequence += 1
        return f"{self.phase}-{self.sequence}"


async def send(kind: str, work: Workload, queue_timeout: float) -> tuple[bool, str, int | None]:
    """One request of a kind: (ok, why not, ticket id when one was created)."""
    headers = {**work.customer.cookie_header(), "X-Request-ID": work.request_id()}
    if kind in ("suggest", "search"):
        query = urllib.parse.quote(work.rng.choice(work.queries))
        response = await work.client.request("GET", f"/api/{kind}?q={query}", headers, queue_timeout=queue_timeout)
        ok = response.status == 200 and response.body.startswith(b"{")
        return ok, f"status {response.status}", None
    if kind == "article":
        response = await work.client.request("GET", f"/articles/{work.rng.choice(work.slugs)}", headers,
                                             queue_timeout=queue_timeout)
        return response.status == 200, f"status {response.status}", None
    body = urllib.parse.urlencode({
        "csrf_token": work.customer.csrf_token, "action": "submit",
        "subject": f"{TICKET_SUBJECT} {headers['X-Request-ID']}",
        "description": f"{work.rng.choice(work.queries)}\n\n(created by bench/load.py)",
        "type": "incident", "category": "general", "impact": "3", "urgency": "2"}).encode()
    response = await work.client.request("POST", "/help", {**headers, **FORM}, body, timeout=TICKET_TIMEOUT_S,
                                         queue_timeout=queue_timeout)
    created = re.search(r"/tickets/(\d+)$", response.headers.get("location", [""])[0])
    if response.status != 302 or not created:
        return False, f"status {response.status}", None
    return True, "", int(created.group(1))


async def timed(kind: str, work: Workload, recorder: Recorder, due: float) -> None:
    """Send one request and record its latency from ``due`` (when it was meant to leave), or its error."""
    timeout = TICKET_TIMEOUT_S if kind == "ticket" else REQUEST_TIMEOUT_S
    try:
        ok, reason, ticket_id = await send(kind, work, max(0.0, due + REQUEST_TIMEOUT_S - time.perf_counter()))
    except asyncio.TimeoutError:
        ok, reason, ticket_id = False, f"sent, no answer within {timeout:g} s", None
    except NotSent as exc:
        ok, reason, ticket_id = False, f"not sent: {exc}", None
    except (OSError, asyncio.IncompleteReadError, StaleConnection, ValueError) as exc:
        ok, reason, ticket_id = False, f"{type(exc).__name__}: {exc}", None
    if ok:
        recorder.latencies[kind].append((time.perf_counter() - due) * 1000)
        if ticket_id is not None:
            recorder.ticket_ids.append(ticket_id)
    else:
        recorder.failed(kind, reason)


def arrivals(rates: dict, duration: float, rng: random.Random) -> list[tuple[float, str]]:
    """Poisson arrivals of each kind at its rate over ``duration`` seconds, in time order."""
    due = []
    for kind, rate in rates.items():
        if rate <= 0:
            continue
        moment = rng.expovariate(rate)
        while moment < duration:
            due.append((moment, kind))
            moment += rng.expovariate(rate)
    return sorted(due)


async def open_loop(work: Workload, rates: dict, duration: float) -> tuple[Recorder, float]:
    """Requests leave when due, whatever is still waiting; what was seen, and the seconds it took."""
    recorder, tasks = Recorder(), []
    started = time.perf_counter()
    for moment, kind in arrivals(rates, duration, work.rng):
        delay = started + moment - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(kind, work, recorder, started + moment)))
    await asyncio.gather(*tasks)
    return recorder, time.perf_counter() - started  # until the last answer: an overloaded server's tail counts


async def closed_loop(work: Workload, weights: dict, users: int, duration: float) -> tuple[Recorder, float]:
    """``users`` virtual users each send their next request when the last one answered."""
    recorder = Recorder()
    kinds, shares = list(weights), list(weights.values())
    started = time.perf_counter()

    async def user() -> None:
        while time.perf_counter() - started < duration:
            await timed(work.rng.choices(kinds, shares)[0], work, recorder, time.perf_counter())

    await asyncio.gather(*(user() for _ in range(users)))
    return recorder, time.perf_counter() - started


async def drain(client: Client, limit_s: float = 30.0) -> float:
    """Wait until the server has worked off what earlier requests left queued (a trivial request answers in
    under half a second); the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        probe = time.perf_counter()
        try:
            await client.request("GET", "/api/suggest?q=ok", timeout=5)
            if time.perf_counter() - probe < 0.5:
                break
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError, StaleConnection, NotSent):
            pass
        await asyncio.sleep(0.5)
    return round(time.perf_counter() - started, 1)


# --- summaries --------------------------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float | None:
    """The value below which ``share`` of the values lie (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered), max(1, math.ceil(share * len(ordered)))) - 1], 1)


def server_durations(log_path: Path, phase: str) -> dict:
    """The server's own durations (ms) by kind for one phase, from its request log."""
    endpoints = {"help.api_suggest": "suggest", "api.search": "search", "public.article": "article",
                 "help.ask": "ticket"}
    durations: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for line in log_path.read_text(errors="replace").splitlines():
        if f'"request_id":"{phase}-' not in line:
            continue
        entry = json.loads(line[line.index("{"):])
        if entry["endpoint"] in endpoints:
            durations[endpoints[entry["endpoint"]]].append(entry["duration_ms"])
    return durations


def summarise(recorder: Recorder, seconds: float, server: dict) -> dict:
    """Per kind: requests, errors, requests/s and latency percentiles, client-side and server-side."""
    kinds = {}
    for kind in KINDS:
        seen = recorder.latencies[kind]
        kinds[kind] = {"ok": len(seen), "errors": recorder.errors[kind], "per_s": round(len(seen) / seconds, 1),
                       "p50_ms": percentile(seen, 0.50), "p95_ms": percentile(seen, 0.95),
                       "p99_ms": percentile(seen, 0.99), "server_p50_ms": percentile(server[kind], 0.50),
                       "server_p95_ms": percentile(server[kind], 0.95)}
    total = sum(k["ok"] for k in kinds.values())
    return {"seconds": round(seconds, 1), "requests_per_s": round(total / seconds, 1), "kinds": kinds,
            "errors": sum(recorder.errors.values()), "error_examples": recorder.error_examples}


def table(phase: dict) -> str:
    """One phase as a Markdown table."""
    rows = ["| kind | ok | errors | req/s | p50 | p95 | p99 | server p50 / p95 |", "|---|---|---|---|---|---|---|---|"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    for kind, k in phase["kinds"].items():
        rows.append(f"| {kind} | {k['ok']} | {k['errors']} | {k['per_s']} | {ms(k['p50_ms'])} ms | "
                    f"{ms(k['p95_ms'])} ms | {ms(k['p99_ms'])} ms | {ms(k['server_p50_ms'])} / "
                    f"{ms(k['server_p95_ms'])} ms |")
    return "\n".join(rows)


def goal_verdict(phase: dict) -> str:
    """Whether the goal phase reached the goal, in one line."""
    suggest = phase["kinds"][GOAL["kind"]]
    reached = (suggest["per_s"] >= GOAL["rate"] * 0.97 and suggest["p95_ms"] is not None
               and suggest["p95_ms"] <= GOAL["p95_ms"] and phase["errors"] == 0)
    return (f"goal ({GOAL['rate']:g} suggestions/s, p95 <= {GOAL['p95_ms']:g} ms, 0 errors): "
            f"{'reached' if reached else 'NOT reached'}: {suggest['per_s']} suggestions/s answered, "
            f"p95 {suggest['p95_ms']} ms, {phase['errors']} errors")


# --- the run ----------------------------------------------------------------------------------------------

def offered_rates(suggestions_per_s: float) -> dict:
    """The mix of RATES scaled to this many suggestions per second."""
    return {kind: rate * suggestions_per_s / RATES["suggest"] for kind, rate in RATES.items()}


async def run_phases(port: int, queries: list[str], slugs: list[str], args) -> dict:
    """Warm the workers, then: one request at a time, saturation (what the server sustains), a sustained load
    at 70% of that, and the goal's offered load (last, as it may overload the server)."""
    server_threads = args.workers * args.threads
    client, customer = Client(port, IN_FLIGHT_PER_THREAD * server_threads), Customer()
    await customer.sign_in(client)
    work = Workload(client, customer, queries, slugs, random.Random(args.seed), "warm")
    await closed_loop(work, {kind: rate for kind, rate in RATES.items() if kind != "ticket"}, args.users,
                      args.warmup)
    results: dict = {"phases": {}, "drain_s": {}}

    async def phase(name: str, load) -> None:
        work.phase = name
        cpu_before = time.process_time()
        recorder, seconds = await load()
        results["phases"][name] = {"recorder": recorder, "seconds": seconds,
                                   "client_cpu_s": round(time.process_time() - cpu_before, 1)}
        results["drain_s"][name] = await drain(client)

    await phase("sequential", lambda: closed_loop(work, RATES, 1, args.duration / 3))
    await phase("saturation", lambda: closed_loop(work, RATES, args.users, args.duration))
    saturated = len(results["phases"]["saturation"]["recorder"].latencies["suggest"])
    sustained = round(0.7 * saturated / results["phases"]["saturation"]["seconds"], 1)
    results["rates"] = {"sustained": offered_rates(sustained), "goal": offered_rates(args.rate)}
    if sustained > 0:
        await phase("sustained", lambda: open_loop(work, results["rates"]["sustained"], args.duration))
    await phase("goal", lambda: open_loop(work, results["rates"]["goal"], args.duration))
    results["retried_stale_connections"] = client.retried_stale
    client.close()
    return results


def bench_tickets(app) -> dict[int, str]:
    """The tickets the bench created (by their subject), id -> subject."""
    from sqlalchemy import select

    from portal.db import get_session
    from portal.domain.models import Ticket

    with app.app_context():
        return dict(get_session().execute(select(Ticket.id, Ticket.subject)
                                          .where(Ticket.subject.startswith(TICKET_SUBJECT))).all())


def ticket_check(before: int, after: int, confirmed: list[int], in_database: dict[int, str]) -> dict:
    """No ticket lost: every ticket the server confirmed (a redirect to it) is in the database, and the count
    grew by exactly the tickets created; a ticket created after its client gave up is listed, not lost."""
    lost = sorted(set(confirmed) - set(in_database))
    unconfirmed = sorted(set(in_database) - set(confirmed))
    return {"before": before, "created": len(confirmed), "after": after, "lost": lost,
            "created_unconfirmed": unconfirmed,
            "none_lost": not lost and after == before + len(confirmed) + len(unconfirmed),
            "count_matches": after == before + len(confirmed)}


def run(args) -> dict:
    """Prepare, serve, load, check the tickets; the results."""
    from portal.config import load_settings

    ranking = load_settings()["MESA_RANKING"]
    workdir = Path(tempfile.mkdtemp(prefix="mesa-load-"))
    port = free_port()
    env = instance_env(workdir, ranking, port, args.workers)
    results: dict = {"ranking": ranking, "workers": args.workers, "threads": args.threads, "cpus": os.cpu_count(),
                     "load_average_before": os.getloadavg()[0]}
    try:
        print(f"preparing {workdir} ({ranking}) ...", file=sys.stderr, flush=True)
        results["setup_s"] = prepare_instance(env)
        app = instance_app(env)
        slugs = published_slugs(app)
        queries = [json.loads(line)["query"] for line in STARTER_QUERIES.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        log_path = workdir / "gunicorn.log"
        server = start_server(env, log_path)
        try:
            wait_until_serving(f"http://{HOST}:{port}", server)
            print(f"serving on {HOST}:{port}; warming {args.warmup:g} s, then 4 phases of up to {args.duration:g} s",
                  file=sys.stderr, flush=True)
            tickets_before = ticket_count(app)
            ran = asyncio.run(run_phases(port, queries, slugs, args))
            results["worker_rss_mb"] = [rss_mb(pid) for pid in worker_pids(server.pid)]
            results["load_average_after"] = os.getloadavg()[0]
        finally:
            stop_server(server)  # graceful: requests in progress finish first
        confirmed = [i for seen in ran["phases"].values() for i in seen["recorder"].ticket_ids]
        results["tickets"] = ticket_check(tickets_before, ticket_count(app), confirmed, bench_tickets(app))
        results["phases"] = {
            name: {**summarise(seen["recorder"], seen["seconds"], server_durations(log_path, name)),
                   "client_cpu_s": seen["client_cpu_s"], "drain_s": ran["drain_s"][name]}
            for name, seen in ran["phases"].items()}
        results["rates"] = ran["rates"]
        results["retried_stale_connections"] = ran["retried_stale_connections"]
        app.extensions["mesa_engine"].dispose()
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: dict, args) -> str:
    """The results as Markdown."""
    def rates(name: str) -> str:
        return ", ".join(f"{kind} {rate:.3g}/s" for kind, rate in results["rates"][name].items())

    phases = results["phases"]
    titles = {
        "sequential": "Sequential: one user, one request at a time, the same mix (what one request costs on "
                      "this machine now)",
        "saturation": f"Saturation: {args.users} users back to back, mix {rates('goal')} in proportion",
        "sustained": f"Sustained: offered {rates('sustained')} (70% of the suggestions at saturation)",
        "goal": f"Goal: offered {rates('goal')}",
    }
    lines_note = ("Latency is what the client saw; in the offered phases it runs from when a request was due, so "
                  "time queued because the server fell behind counts. Server: the duration in its request log.")
    lines = [f"Ranking `{results['ranking']}`, gunicorn {results['workers']} workers x {results['threads']} "
             f"threads, {results['cpus']} CPUs, load average {results['load_average_before']:.1f} before and "
             f"{results['load_average_after']:.1f} after; setup {results['setup_s']} s.", "", lines_note, ""]
    for name, phase in phases.items():
        lines += [f"{titles[name]}; {phase['seconds']} s, {phase['requests_per_s']} requests/s answered, client "
                  f"CPU {phase['client_cpu_s']} s, then {phase['drain_s']} s until the server was idle:", "",
                  table(phase), ""]
        if phase["errors"]:
            lines += [f"errors: {'; '.join(dict.fromkeys(phase['error_examples']))}", ""]
    tickets = results["tickets"]
    lines += [
        goal_verdict(phases["goal"]),
        f"tickets: {tickets['before']} before + {tickets['created']} created = {tickets['after']} after: "
        + ("none lost" if tickets["none_lost"] else f"LOST {tickets['lost']}")
        + (f" ({len(tickets['created_unconfirmed'])} created after their client gave up)"
           if tickets["created_unconfirmed"] else ""),
        f"worker RSS after the load: {', '.join(f'{mb:g} MB' for mb in results['worker_rss_mb'])}; "
        f"stale keep-alive connections retried: {results['retried_stale_connections']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the report (and write JSON when asked); 1 when a ticket was lost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each measured phase")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of warm-up (not measured)")
    parser.add_argument("--rate", type=float, default=GOAL["rate"],
                        help="suggestions per second offered in the goal phase (the other kinds in proportion)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--users", type=int, help="virtual users of the saturation phase (default: one for "
                                                    "each of the server's threads)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway instance (and gunicorn's log)")
    args = parser.parse_args(argv)
    from portal.config import load_settings

    args.threads = load_settings()["MESA_THREADS"]
    args.users = args.users or args.workers * args.threads
    results = run(args)
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0 if results["tickets"]["none_lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
