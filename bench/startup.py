"""How long a web worker takes to start at scale: its index filled from the database, or from its snapshot.

    python bench/startup.py [--chunks 100000] [--ranking hybrid+e5] [--json FILE]

A worker never runs a model at start: it reads each article's chunks and vectors from the database (or
the snapshot file it wrote last time) and fills FAISS and BM25. What that costs depends on how many
articles, chunks and vectors there are and on their dimensions, not on which model made the vectors, so
this bench does not embed 100k chunks (hours on 2 cores, see `bench/scale.py`): it stores the knowledge base
of the scale bench (real text, real chunks, the ranking's real units: passages or sections) with vectors
that are random unit vectors of the ranking's real dimensions, in a generation stamped with the ranking's
real models. Then, each in a fresh process, a worker starts from the database alone (snapshot deleted; it
writes the snapshot), and one from that snapshot; reported: seconds until the index is in memory, the
snapshot's write time, and peak RSS. The SQLite database is the default; ``--database-url`` for PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import DEFAULT_RANKING, PreparedArticle, get_ranking, make_embedders  # noqa: E402
from indexer.chunking import DEFAULT_MAX_CHARS, chunk_article  # noqa: E402
from indexer.prepared import embedding_units  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from scale import knowledge_base, peak_rss_mb  # noqa: E402

GROUP = 200  # articles written per commit


def app_for(workdir: Path, url: str, ranking: str):
    from portal import create_app

    return create_app({"MESA_ENV": "development", "MESA_INSTANCE_DIR": str(workdir), "MESA_DATABASE_URL": url,
                       "MESA_RANKING": ranking})


def fill(workdir: Path, url: str, ranking_name: str, chunks: int) -> dict:
    """The database with the knowledge base and a generation of random vectors (see the module's doc)."""
    from portal.db import get_session, upgrade_database
    from portal.domain import search_index
    from portal.domain.articles import import_articles
    from portal.search import get_search

    ranking = get_ranking(ranking_name)
    app = app_for(workdir, url, ranking_name)
    upgrade_database(app)
    rng = np.random.default_rng(11)
    articles = knowledge_base(chunks)
    started = time.perf_counter()
    with app.app_context():
        session = get_session()
        import_articles(session, articles)
        session.commit()
        service = get_search()
        embedders = make_embedders(ranking)  # names and dimensions only: no model is loaded
        generation, _ = search_index.start_generation(
            session, ranking.name, service.configured_signature(),
            {d.backend: {"model": embedders[d.backend].model, "dim": embedders[d.backend].dim, "unit": d.unit}
             for d in ranking.dense}, DEFAULT_MAX_CHARS)
        counts = {d.backend: 0 for d in ranking.dense}
        change = search_index.next_change(session)
        for start in range(0, len(articles), GROUP):
            for article in articles[start:start + GROUP]:
                pieces = chunk_article(article, DEFAULT_MAX_CHARS)
                prepared = PreparedArticle(article, pieces)
                for dense in ranking.dense:
                    owners = embedding_units(dense.unit, article.title, pieces)[1]
                    vectors = rng.standard_normal((len(owners), embedders[dense.backend].dim), dtype=np.float32)
                    prepared.vectors[dense.backend] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
                    prepared.owners[dense.backend] = np.asarray(owners, np.int32)
                    counts[dense.backend] += len(owners)
                search_index.write_document(session, generation, article.slug, prepared, change)
            session.commit()
        search_index.next_change(session)
        search_index.activate(session, generation, round(time.perf_counter() - started, 1))
        session.commit()
    return {"articles": len(articles), "chunks": sum(len(chunk_article(a)) for a in articles), "vectors": counts,
            "fill_s": round(time.perf_counter() - started, 1)}


def start(workdir: Path, url: str, ranking: str, from_snapshot: bool) -> dict:
    """One worker's start, in this (fresh) process."""
    from portal.search import get_search

    snapshot = workdir / "index.npz"
    if not from_snapshot:
        snapshot.unlink(missing_ok=True)
    app = app_for(workdir, url, ranking)
    with app.app_context():
        service = get_search()
        started = time.perf_counter()
        index = service.index()
        seconds = time.perf_counter() - started
    expected = "snapshot" if from_snapshot else "database"
    if service.last_load.get("source") != expected:
        raise RuntimeError(f"expected a start from the {expected}, got {service.last_load}")
    return {"seconds": round(seconds, 1), **service.last_load, "peak_rss_mb": round(peak_rss_mb()),
            "snapshot_mb": round(snapshot.stat().st_size / 2**20), "articles": len(index.articles),
            "approximate": {b: s.approximate for b, s in index.stores.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--ranking", default=DEFAULT_RANKING)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--start", choices=["database", "snapshot"], help=argparse.SUPPRESS)  # internal
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.start:
        print(json.dumps(start(args.workdir, args.database_url, args.ranking, args.start == "snapshot")))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix=f"mesa-startup-{args.chunks}-"))
    url = args.database_url or f"sqlite:///{workdir / 'mesa.db'}"
    results = {"ranking": args.ranking, "database": url.split(":", 1)[0].split("+")[0],
               **fill(workdir, url, args.ranking, args.chunks)}
    if url.startswith("sqlite"):
        results["database_mb"] = round((workdir / "mesa.db").stat().st_size / 2**20)
    for source in ("database", "snapshot"):
        done = subprocess.run([sys.executable, __file__, "--start", source, "--workdir", str(workdir),
                               "--ranking", args.ranking, "--database-url", url], check=True,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        results[f"from_{source}"] = json.loads(done.stdout.strip().splitlines()[-1])
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
