"""How fast the reports render at size: a desk with ~10k tickets and ~100k portal events (the demo generator,
`portal/demo_data.py`, over a year), the reports page and the trends page rendered through the app.

    python bench/reports_cost.py [--days 365] [--visits-per-day 115] [--repeat 5] [--json FILE]

A throwaway SQLite database in a temp directory, the fake ranking (the classifier's speed does not matter
here; the reports read only rows). Reported: the rows made, the seeding time, and per page the median and
the slowest of ``--repeat`` renders (after one warm-up), as an agent, for the default and the longest period.
The issue's goal: under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ("/reports/?days=30", "/reports/?days=365", "/reports/trends/?days=90&by=week",
         "/reports/trends/?days=90&by=day", "/reports/trends/?days=365&by=week")
PASSWORD = "bench-password-123"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--visits-per-day", type=float, default=115.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from portal import create_app
    from portal.db import get_session
    from portal.demo_commands import search_classifier
    from portal.demo_data import seed
    from portal.domain import articles as article_service
    from portal.domain import users as user_service
    from portal.domain.models import PortalEvent, Role, Ticket
    from portal.search import get_search

    with tempfile.TemporaryDirectory(prefix="mesa-bench-reports-") as directory:
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "MESA_INSTANCE_DIR": directory,
                          "MESA_DATABASE_URL": f"sqlite:///{directory}/mesa.db", "MESA_RANKING": "fake",
                          "MESA_EMBEDDER_MODEL": "", "MESA_BACKGROUND_JOBS": False})
        with app.app_context():
            from portal.domain.models import Base

            Base.metadata.create_all(app.extensions["mesa_engine"])
            session = get_session()
            article_service.import_directory(session, ROOT / "articles")
            user_service.create_user(session, "agent@bench.invalid", "Agent", PASSWORD, Role.AGENT_L1)
            session.commit()
            get_search().rebuild(session)
            started = time.perf_counter()
            seed(session, app.extensions["mesa_sla"], search_classifier(), days=args.days,
                 visits_per_day=args.visits_per_day)
            session.commit()
            seeding = time.perf_counter() - started
            tickets = session.scalar(select(func.count()).select_from(Ticket))
            events = session.scalar(select(func.count()).select_from(PortalEvent))
        client = app.test_client()
        client.post("/login", data={"email": "agent@bench.invalid", "password": PASSWORD})
        pages = {}
        for page in PAGES:
            assert client.get(page).status_code == 200, page  # warm-up
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(page)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            pages[page] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
        app.extensions["mesa_engine"].dispose()
    result = {"tickets": tickets, "portal_events": events, "seed_seconds": round(seeding, 1), "pages": pages}
    print(f"{tickets} tickets, {events} portal events (seeded in {seeding:.1f} s)")
    for page, figures in pages.items():
        print(f"  {page:<40} median {figures['median_ms']:7.1f} ms   slowest {figures['max_ms']:7.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
