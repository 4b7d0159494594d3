"""`make fuzz`: schemathesis against a live Mesa on 127.0.0.1 (a throwaway instance, fake ranking).

Builds the schema with the migrations, imports the starter articles, creates one account per role with an
API token each, serves the app on a free local port, and runs schemathesis from /api/openapi.json once per
caller (an admin's write token, a customer's write token, nobody). Fails when any answer is a 5xx or does
not match the document. Bounded: a few examples per operation, one worker, a time budget per run.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")


def prepare(directory: Path):
    """A seeded app in ``directory`` (articles, accounts, three tickets) and the tokens of its callers."""
    from portal import create_app
    from portal.db import get_session, upgrade_database
    from portal.domain import api_tokens, articles, tickets, users
    from portal.domain.models import Role
    from portal.search import get_search

    app = create_app({"MESA_ENV": "development", "MESA_INSTANCE_DIR": str(directory), "MESA_RANKING": "fake",
                      "MESA_DATABASE_URL": f"sqlite:///{directory / 'mesa.db'}", "MESA_BACKGROUND_JOBS": "0",
                      "MESA_API_RATE_LIMIT": "0"})  # thousands of requests a minute, on purpose
    upgrade_database(app)
    tokens = {}
    with app.app_context():
        session = get_session()
        articles.import_directory(session, ROOT / "articles")
        for role in (Role.ADMIN, Role.AGENT_L1, Role.CUSTOMER):
            user = users.create_user(session, f"{role.value}@fuzz.example", role.value, "fuzz password 1", role)
            tokens[role.value] = api_tokens.create_token(session, user, "fuzz", "write")[1]
            if role == Role.CUSTOMER:  # ticket 1, 2 and 3: the lowest ids, which schemathesis tries first
                for number in range(3):
                    tickets.create_ticket(session, user, f"Fuzz ticket {number}", "Seeded for the fuzzer.",
                                          "general", 3, 2, app.extensions["mesa_sla"])
        session.commit()
        get_search().rebuild(session)
    return app, tokens


def serve(app):
    """Serve the app on 127.0.0.1 at a free port in a background thread; returns the server."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would drown the report
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_schemathesis(base: str, token: str | None, max_examples: int, seconds: int, workdir: Path) -> int:
    """One schemathesis run as one caller, its cache in ``workdir`` (nothing left in the checkout); its exit
    code."""
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/api/openapi.json",
               "--checks", CHECKS, "--max-examples", str(max_examples), "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--max-time", str(seconds), "--request-timeout", "20",
               "--seed", "15", "--suppress-health-check", "all", "--no-color"]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    return subprocess.run(command, env={**os.environ, "NO_COLOR": "1"}, cwd=workdir).returncode


def main() -> int:
    """Prepare, serve, fuzz as each caller; non-zero when any run found a problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=8, help="test cases per operation and run")
    parser.add_argument("--seconds", type=int, default=40, help="time budget of each run (seconds)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="mesa-fuzz-") as tmp:
        app, tokens = prepare(Path(tmp))
        server = serve(app)
        base = f"http://127.0.0.1:{server.server_port}"
        failures = 0
        try:
            for caller in ("admin", "customer", None):
                print(f"== schemathesis as {caller or 'an anonymous caller'} against {base}", flush=True)
                failures += run_schemathesis(base, tokens.get(caller), args.max_examples, args.seconds, Path(tmp)) != 0
        finally:
            server.shutdown()
            app.extensions["mesa_engine"].dispose()
    print("fuzz: no 5xx, every answer matched the schema" if not failures else f"fuzz: {failures} run(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
