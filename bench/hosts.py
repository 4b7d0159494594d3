"""Several hosts over one database: is every publish found, and is none ever lost?

    python bench/hosts.py [--database-url URL] [--ranking NAME] [--publishes 50] [--json FILE]

Host B is a portal server (its own process and instance directory, so its own snapshot) on 127.0.0.1;
host A is this process, publishing articles as the portal does (the article and its search rows in one
transaction). Measured, on SQLite by default or on the PostgreSQL at ``--database-url``:

- **publish → found**: for each of ``--publishes`` new articles, the time from host A's commit until host B's
  `/api/search` returns it (p50, p95, max);
- **publishes during a rebuild**: a full `flask index build --force` runs in a third process while host A
  publishes 20 articles; afterwards every one must be in the new generation and found by host B;
- **kill -9 in the middle of a publish**: a process writes an article's rows and is killed before its commit;
  the database must be unchanged and in step with the index;
- **kill -9 of a build**: a `flask index build --force` is killed part-way; searches go on with the active
  generation, and the next build goes on where the killed one stopped (how many articles it kept is shown).

The knowledge base is the starter KB plus ``--pack-articles`` of the benchmark packs' articles (both
languages), so a build lasts long enough to be interrupted. Traffic goes to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import DEFAULT_RANKING, Article, read_articles  # noqa: E402
from indexer.evaluate import percentile  # noqa: E402

PACKS = ROOT / "bench" / "packs"
FOUND_WITHIN_S = 30  # a publish not found by then counts as lost


def knowledge_base(pack_articles: int) -> list[Article]:
    """The starter KB's published articles and the first ``pack_articles`` of the benchmark packs'."""
    articles = [a for a in read_articles(ROOT / "articles") if a.status == "published"]
    extra = []
    for pack in sorted(PACKS.iterdir()):
        if (pack / "articles").is_dir():
            for article in read_articles(pack):
                article.slug = f"{pack.name}-{article.slug}"[:200]
                extra.append(article)
    return articles + extra[::max(1, len(extra) // max(1, pack_articles))][:pack_articles]


def new_article(number: int, tag: str) -> Article:
    """An article no other article resembles, found by its own made-up words."""
    word = f"zq{tag}{number:03d}"
    return Article(slug=f"bench-{tag}-{number:03d}", lang="en", category="hardware", tags=["bench"],
                   title=f"Scanner {word} shows error {word.upper()} after the update",
                   body=f"## Fix\n\nHold the trigger of the {word} scanner for ten seconds, then dock it.\n")


def environment(workdir: Path, url: str, ranking: str) -> dict:
    return {**os.environ, "MESA_ENV": "development", "MESA_INSTANCE_DIR": str(workdir),
            "MESA_DATABASE_URL": url, "MESA_RANKING": ranking, "HF_HUB_OFFLINE": "1"}


def flask(workdir: Path, url: str, ranking: str, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", *args], cwd=ROOT,
                            env=environment(workdir, url, ranking), **popen)


def app_for(workdir: Path, url: str, ranking: str):
    from portal import create_app

    return create_app({"MESA_ENV": "development", "MESA_INSTANCE_DIR": str(workdir), "MESA_DATABASE_URL": url,
                       "MESA_RANKING": ranking})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """Host B: the portal served on 127.0.0.1 from its own instance directory."""

    def __init__(self, workdir: Path, url: str, ranking: str):
        self.port = free_port()
        self.search_ms: list[float] = []  # how long each of host B's searches took (the found time's grain)
        self.process = flask(workdir, url, ranking, "run", "--port", str(self.port), "--no-reload",
                             "--no-debugger", "--without-threads", stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 180
        while True:
            try:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.slugs("warm up")
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError("host B did not start")
                time.sleep(0.5)

    def slugs(self, query: str) -> list[str]:
        started = time.perf_counter()
        self.connection.request("GET", "/api/search?" + urllib.parse.urlencode({"q": query, "k": 5}))
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/api/search answered {response.status}: {body[:200]!r}")
        self.search_ms.append((time.perf_counter() - started) * 1000)
        return [hit["slug"] for hit in json.loads(body)["results"]]

    def wait_for(self, article: Article, since: float) -> float | None:
        """Seconds from ``since`` until host B finds the article (None: not within FOUND_WITHIN_S)."""
        query = article.title
        while time.perf_counter() - since < FOUND_WITHIN_S:
            if article.slug in self.slugs(query):
                return time.perf_counter() - since
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def publish(app, article: Article) -> float:
    """Publish as the portal does; returns the moment of the commit (perf_counter)."""
    from sqlalchemy import select

    from portal.db import get_session
    from portal.domain.articles import import_articles
    from portal.domain.models import Article as Row
    from portal.search import get_search

    with app.app_context():
        session = get_session()
        import_articles(session, [article])
        session.flush()
        get_search().stage_article(session, session.scalar(select(Row).where(Row.slug == article.slug)))
        session.commit()
        return time.perf_counter()


def consistent(app) -> dict:
    """Whether the active generation holds exactly the published articles."""
    from portal.db import get_session
    from portal.domain import search_index

    with app.app_context():
        session = get_session()
        generation = search_index.active_generation(session)
        diff = search_index.difference(session, generation)
        return {"generation": generation.uid, "stale": len(diff.stale), "gone": len(diff.gone)}


KILL_MID_PUBLISH = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from bench.hosts import app_for, new_article
    from pathlib import Path
    from portal.db import get_session
    from portal.domain.articles import import_articles
    from portal.domain.models import Article
    from portal.search import get_search
    from sqlalchemy import select
    app = app_for(Path({workdir!r}), {url!r}, {ranking!r})
    with app.app_context():
        session = get_session()
        import_articles(session, [new_article(0, "killed")])
        session.flush()
        get_search().stage_article(session, session.scalar(select(Article).where(Article.slug == "bench-killed-000")))
        session.flush()
        print("staged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def run(url: str | None, ranking: str, publishes: int, pack_articles: int) -> dict:
    from portal.db import get_session, upgrade_database
    from portal.domain.articles import import_articles
    from portal.search import get_search

    base = Path(tempfile.mkdtemp(prefix="mesa-hosts-"))
    url = url or f"sqlite:///{base / 'mesa.db'}"
    host_a, host_b, builder = base / "host-a", base / "host-b", base / "builder"
    app = app_for(host_a, url, ranking)
    upgrade_database(app)
    with app.app_context():
        session = get_session()
        import_articles(session, knowledge_base(pack_articles))
        session.commit()
        started = time.perf_counter()
        get_search().rebuild(session, force=True, load=False)
        first_build_s = time.perf_counter() - started
    results: dict = {"database": url.split(":", 1)[0].split("+")[0], "ranking": ranking,
                     "articles": len(knowledge_base(pack_articles)), "first_build_s": round(first_build_s, 1)}
    server = Server(host_b, url, ranking)
    try:
        # 1. publish on host A, found by host B
        latencies, lost = [], []
        rng = random.Random(5)
        for number in range(publishes):
            article = new_article(number, "pub")
            time.sleep(rng.uniform(0, 0.5))  # publishes come at any moment, not in step with host B's polls
            seconds = server.wait_for(article, publish(app, article))
            (latencies.append(seconds * 1000) if seconds is not None else lost.append(article.slug))
        results["publish_found_ms"] = {"p50": round(statistics.median(latencies), 1),
                                       "p95": round(percentile(latencies, 95), 1),
                                       "max": round(max(latencies), 1), "count": len(latencies), "lost": lost,
                                       "host_b_search_p50_ms": round(statistics.median(server.search_ms), 1)}

        # 2. publishes during a full rebuild
        build = flask(builder, url, ranking, "index", "build", "--force", "--quiet", stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
        during = []
        for number in range(20):
            article = new_article(number, "race")
            publish(app, article)
            during.append((article, build.poll() is None))
            time.sleep(0.3)
        output = build.communicate(timeout=1800)[0]
        if build.returncode != 0:
            raise RuntimeError(f"the rebuild failed: {output[-2000:]}")
        time.sleep(1.0)  # host B notices the switch and loads the new generation in the background
        found = [a.slug for a, _ in during if server.wait_for(a, time.perf_counter()) is not None]
        results["rebuild_race"] = {"published": len(during), "while_building": sum(b for _, b in during),
                                   "found_after": len(found), "lost": len(during) - len(found),
                                   **consistent(app)}

        # 3. kill -9 in the middle of a publish
        script = KILL_MID_PUBLISH.format(root=str(ROOT), workdir=str(base / "killed"), url=url, ranking=ranking)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env=environment(base / "killed", url, ranking))
        state = consistent(app)
        results["kill_mid_publish"] = {"killed": done.returncode == -signal.SIGKILL and "staged" in done.stdout,
                                       "article_saved": "bench-killed-000" in server.slugs(new_article(0, "killed").title),
                                       **state}

        # 4. kill -9 of a build, then the next build goes on
        before = consistent(app)["generation"]
        build = flask(builder, url, ranking, "index", "build", "--force", "--quiet", stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        kept = 0
        deadline = time.time() + 600
        while kept < 50 and time.time() < deadline and build.poll() is None:  # until it has committed some
            time.sleep(1.0)
            kept = building_articles(app)
        killed_part_way = build.poll() is None
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=60)
        kept = building_articles(app)
        still = server.slugs(new_article(0, "pub").title)
        after_kill = consistent(app)
        started = time.perf_counter()
        resumed = flask(builder, url, ranking, "index", "build", "--force", "--quiet", stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
        output = resumed.communicate(timeout=1800)[0]
        results["kill_build"] = {"killed_part_way": killed_part_way,
                                 "active_unchanged": after_kill["generation"] == before,
                                 "searches_went_on": "bench-pub-000" in still,
                                 "articles_kept_by_the_killed_build": kept,
                                 "resumed_build_s": round(time.perf_counter() - started, 1),
                                 "resumed_ok": resumed.returncode == 0, **consistent(app)}
        time.sleep(1.0)
        missing = [a.slug for a in [new_article(n, "pub") for n in range(publishes)]
                   if server.wait_for(a, time.perf_counter()) is None]
        results["kill_build"]["published_missing_after"] = len(missing)
    finally:
        server.stop()
    return results


def building_articles(app) -> int:
    """How many articles the generation being built holds so far."""
    from sqlalchemy import func, select

    from portal.db import get_session
    from portal.domain.models import SearchDocument, SearchGeneration

    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(SearchDocument).join(
            SearchGeneration, SearchGeneration.id == SearchDocument.generation_id).where(
            SearchGeneration.status == "building", SearchDocument.article.is_not(None))) or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("MESA_TEST_DATABASE_URL", ""),
                        help="a PostgreSQL URL (default: a SQLite file; MESA_TEST_DATABASE_URL when set)")
    parser.add_argument("--ranking", default=DEFAULT_RANKING)
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--pack-articles", type=int, default=300, help="benchmark-pack articles added to the KB")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.database_url or None, args.ranking, args.publishes, args.pack_articles)
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
