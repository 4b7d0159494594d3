"""Scale benchmark: grow the knowledge base to 1k, 10k and 100k chunks and measure Mesa at each size.

    python bench/scale.py [--sizes 1000,10000,100000] [--ranking hybrid] [--json FILE]

Each size runs in fresh processes, as a deployment does: one fills the database, one builds the index
into the database (as `flask index build` does), one starts a worker from the database alone (no
snapshot), one from the snapshot that start wrote, and one loads it (as the server does) and queries it.
Reported: index build time and chunks/s; worker start-up from the database and from the snapshot (seconds,
peak RSS); query p50/p95 split into embedding, search and fusion; `/api/search` p50/p95 through a real HTTP
server (the portal served by `flask run` in another process, on 127.0.0.1); the time to publish one article
(its rows written and committed, then found by the running server, which follows the database); the
recall@10 of each approximate vector store against exact search (a returned vector counts when its exact
score reaches the exact 10th best; by id too); and the peak RSS of the build process, of the query process
and of the server.

The text is real: the starter KB and the benchmark packs' articles, then variants of them (sentences
shuffled and partly dropped, one sentence borrowed from another article of the same language, a team
name in the title) until the size is reached. Queries are the packs' real queries.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import (DEFAULT_RANKING, Article, KnowledgeIndex, chunk_article, get_ranking, make_embedders,  # noqa: E402
                     read_articles)
from indexer.evaluate import percentile, read_queries  # noqa: E402

PACKS = ROOT / "bench" / "packs"
TEAMS = {"en": ["Sales", "Finance", "Madrid office", "Warehouse", "Legal", "Support", "Lab", "Field team"],
         "es": ["Ventas", "Finanzas", "Oficina de Madrid", "Almacén", "Legal", "Soporte", "Laboratorio", "Campo"]}
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
QUERIES = 200


def base_articles() -> list[Article]:
    """The starter KB's published articles and every dev pack's articles (slugs made unique)."""
    articles = [a for a in read_articles(ROOT / "articles") if a.status == "published"]
    for pack in sorted(PACKS.iterdir()):
        if (pack / "articles").is_dir():
            for article in read_articles(pack):
                article.slug = f"{pack.name}-{article.slug}"[:200]
                articles.append(article)
    return articles


def variant(article: Article, number: int, donors: list[Article], rng: random.Random) -> Article:
    """A plausible sibling of an article: same topic, reworded by reordering, dropping and borrowing."""
    sections = re.split(r"(?m)^(?=## )", article.body)
    body = []
    for section in sections:
        lines = section.split("\n", 1)
        heading, text = (lines[0], lines[1] if len(lines) > 1 else "") if section.startswith("## ") else ("", section)
        sentences = [s for s in _SENTENCE_RE.split(" ".join(text.split())) if s]
        rng.shuffle(sentences)
        kept = [s for s in sentences if rng.random() > 0.15] or sentences[:1]
        donor = rng.choice(donors)
        borrowed = [s for s in _SENTENCE_RE.split(" ".join(donor.body.split())) if s and not s.startswith("#")]
        if borrowed:
            kept.insert(rng.randrange(len(kept) + 1), rng.choice(borrowed))
        body.append(f"{heading}\n\n{' '.join(kept)}\n" if heading else f"{' '.join(kept)}\n")
    team = rng.choice(TEAMS[article.lang])
    return Article(slug=f"{article.slug[:180]}-v{number}", title=f"{team}: {article.title}", lang=article.lang,
                   body="\n".join(body), category=article.category, tags=list(article.tags))


def knowledge_base(chunks_wanted: int, seed: int = 7) -> list[Article]:
    """Articles with at least ``chunks_wanted`` chunks in total: the real ones first, then variants."""
    rng = random.Random(seed)
    base = base_articles()
    by_lang = {lang: [a for a in base if a.lang == lang] for lang in ("es", "en")}
    articles, total, number = [], 0, 0
    while total < chunks_wanted:
        source = base[number % len(base)]
        article = source if number < len(base) else variant(source, number, by_lang[source.lang], rng)
        articles.append(article)
        total += len(chunk_article(article))
        number += 1
    return articles


def bench_queries() -> list[str]:
    """Real user queries from the packs, Spanish and English mixed, in a fixed order."""
    queries = [q.text for pack in sorted(PACKS.iterdir()) if (pack / "queries.jsonl").exists()
               for q in read_queries(pack)]
    random.Random(3).shuffle(queries)
    return queries[:QUERIES]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(values: list[float]) -> dict:
    return {"p50": round(statistics.median(values), 2), "p95": round(percentile(values, 95), 2)}


def measure_api(instance: Path, ranking: str, queries: list[str], then=None) -> dict:
    """p50/p95 of `GET /api/search` through `flask run` on 127.0.0.1 (one client, keep-alive).

    ``then(search)``, if given, runs while the server is still up; ``search(query)`` returns the slugs the
    server answers, and whatever ``then`` returns joins the results.

    The server answers on one long-lived thread, as a gunicorn sync worker does: torch keeps a pool of
    compute threads per calling thread, so a server starting a thread per request pays ~5 ms more.
    """
    port = free_port()
    env = {**os.environ, "MESA_ENV": "development", "MESA_INSTANCE_DIR": str(instance),
           "MESA_RANKING": ranking, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "run", "--port", str(port),
                               "--no-reload", "--no-debugger", "--without-threads"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("GET", "/api/search?q=warm+up")
                connection.getresponse().read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the portal did not start")
                time.sleep(0.5)

        def search(query: str) -> bytes:
            connection.request("GET", "/api/search?" + urllib.parse.urlencode({"q": query, "k": 5}))
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"/api/search answered {response.status}")
            return body

        for query in queries[:5]:  # the models load on the first searches
            search(query)
        latencies = []
        for query in queries:
            started = time.perf_counter()
            search(query)
            latencies.append((time.perf_counter() - started) * 1000)
        extra = {}
        if then is not None:
            extra = then(lambda query: [hit["slug"] for hit in json.loads(search(query))["results"]])
        return {**summary(latencies), **extra, "server_peak_rss_mb": round(server_peak_rss_mb(server.pid))}
    finally:
        server.terminate()
        server.wait(timeout=30)


def portal_app(workdir: Path, ranking_name: str):
    from portal import create_app

    return create_app({"MESA_ENV": "development", "MESA_INSTANCE_DIR": str(workdir), "MESA_RANKING": ranking_name})


def prepare_database(chunks: int, workdir: Path, ranking_name: str) -> None:
    """The portal's database with the generated knowledge base (its own process: not part of the peak)."""
    from portal.db import get_session
    from portal.domain.articles import import_articles
    from portal.domain.models import Base

    app = portal_app(workdir, ranking_name)
    Base.metadata.create_all(app.extensions["mesa_engine"])
    with app.app_context():
        session = get_session()
        import_articles(session, knowledge_base(chunks))
        session.commit()


def server_peak_rss_mb(pid: int) -> float:
    """The peak resident memory of another process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_index(workdir: Path, ranking_name: str) -> dict:
    """Build the index into the database as `flask index build` does (run in a process of its own):
    articles read from the database a page at a time, embedded in groups, their rows committed a group at
    a time (the build time includes loading the models, a few seconds)."""
    from portal.db import get_session
    from portal.search import get_search

    with portal_app(workdir, ranking_name).app_context():
        started = time.perf_counter()
        get_search().rebuild(get_session(), force=True, load=False)
        build_seconds = time.perf_counter() - started
    return {"build_s": round(build_seconds, 1), "build_peak_rss_mb": round(peak_rss_mb())}


def start_worker(workdir: Path, ranking_name: str, from_snapshot: bool) -> dict:
    """A web process's start (run in a process of its own): the index into memory from the snapshot, or
    with the snapshot deleted from the database alone (which then writes the snapshot)."""
    from portal.search import get_search

    snapshot = workdir / "index.npz"
    if not from_snapshot:
        snapshot.unlink(missing_ok=True)
    with portal_app(workdir, ranking_name).app_context():
        service = get_search()
        started = time.perf_counter()
        service.index()
        seconds = time.perf_counter() - started
        if service.last_load["source"] != ("snapshot" if from_snapshot else "database"):
            raise RuntimeError(f"expected a start from the {'snapshot' if from_snapshot else 'database'}, "
                               f"got {service.last_load}")
    return {"seconds": round(seconds, 1), **service.last_load, "peak_rss_mb": round(peak_rss_mb())}


def write_exact_vectors(workdir: Path, index: KnowledgeIndex, ranking_name: str) -> None:
    """The exact vectors (as the database holds them) under the ids the loaded index gave them, one file
    per backend, to check the approximate stores' recall."""
    from portal.db import get_session
    from portal.domain import search_index

    files = {d.backend: open(workdir / f"exact-{d.backend}.f32", "wb") for d in index.ranking.dense}
    ids = {backend: [] for backend in files}
    with portal_app(workdir, ranking_name).app_context():
        session = get_session()
        for prepared in search_index.read_documents(session, search_index.active_generation(session)):
            entry, offset = index.articles[prepared.slug], 0
            for dense in index.ranking.dense:
                rows = len(prepared.vectors[dense.backend])
                ids[dense.backend].append(np.asarray(entry.vector_ids[offset:offset + rows], np.int64))
                files[dense.backend].write(np.ascontiguousarray(prepared.vectors[dense.backend]).tobytes())
                offset += rows
    for backend, handle in files.items():
        handle.close()
        np.save(workdir / f"exact-{backend}-ids.npy", np.concatenate(ids[backend]))


def run_size(chunks: int, ranking_name: str) -> dict:
    """Everything measured at one size: the database is filled in one process, the index built in another,
    and this fresh process loads the saved index (as the server does) to time queries and publishing."""
    from portal.db import get_session

    workdir = Path(tempfile.mkdtemp(prefix=f"mesa-scale-{chunks}-"))
    subprocess.run([sys.executable, __file__, "--prepare", str(chunks), "--workdir", str(workdir),
                    "--ranking", ranking_name], check=True)
    done = subprocess.run([sys.executable, __file__, "--build", "--workdir", str(workdir),
                           "--ranking", ranking_name], check=True, stdout=subprocess.PIPE, text=True)
    built = json.loads(done.stdout.strip().splitlines()[-1])
    starts = {}
    for source in ("database", "snapshot"):
        done = subprocess.run([sys.executable, __file__, "--start", source, "--workdir", str(workdir),
                               "--ranking", ranking_name], check=True, stdout=subprocess.PIPE, text=True)
        starts[source] = json.loads(done.stdout.strip().splitlines()[-1])
    ranking = get_ranking(ranking_name)
    embedders = make_embedders(ranking)
    index = KnowledgeIndex.load(workdir / "index.npz", embedders)
    write_exact_vectors(workdir, index, ranking_name)

    queries = bench_queries()
    for query in queries[:5]:
        index.search(query, k=5)
    parts = {"embed_ms": [], "search_ms": [], "fuse_ms": [], "total_ms": []}
    for query in queries:
        timings = {}
        started = time.perf_counter()
        index.search(query, k=5, timings=timings)
        parts["total_ms"].append((time.perf_counter() - started) * 1000)
        for name in ("embed_ms", "search_ms", "fuse_ms"):
            parts[name].append(timings[name])

    rss = peak_rss_mb()

    recall, recall_by_id, recall_curve = {}, {}, {}
    for backend, store in index.stores.items():
        if not store.approximate:
            continue
        ids = np.load(workdir / f"exact-{backend}-ids.npy")
        vectors = np.memmap(workdir / f"exact-{backend}.f32", dtype=np.float32, mode="r").reshape(len(ids), -1)
        sample = embedders[backend].encode_queries(queries[:100])
        # A vector the store returns counts as found when its exact score reaches the exact 10th best: the
        # generated variants repeat passages word for word, and which of several identical vectors takes
        # the 10th place is a coin toss (exact FAISS search itself scores 0.99 on ids alone).
        order = np.argsort(ids)
        truths, exact_scores = [], []
        for query_vector in sample:
            scores = np.concatenate([np.asarray(vectors[i:i + 50_000]) @ query_vector
                                     for i in range(0, len(vectors), 50_000)])
            top = np.argpartition(-scores, 10)[:10]
            truths.append((set(ids[top].tolist()), float(scores[top].min()) - 1e-6))
            exact_scores.append(scores)

        def hits(truth, found, scores):
            ids_found = found[found >= 0]
            positions = order[np.searchsorted(ids, ids_found, sorter=order)]
            return int((scores[positions] >= truth[1]).sum()), len(truth[0] & set(ids_found.tolist()))

        faiss_index = store._index
        default = faiss_index.nprobe
        curve = []
        for nprobe in sorted({max(1, faiss_index.nlist // share) for share in (32, 16, 8, 4)} | {default}):
            faiss_index.nprobe = nprobe
            started = time.perf_counter()
            found = [store.search(row[None, :], 10)[1][0] for row in sample]
            search_ms = (time.perf_counter() - started) * 1000 / len(sample)
            counted = [hits(t, f, e) for t, f, e in zip(truths, found, exact_scores)]
            value = sum(c[0] for c in counted) / (10 * len(sample))
            by_id = sum(c[1] for c in counted) / (10 * len(sample))
            curve.append({"nprobe": nprobe, "nlist": faiss_index.nlist, "recall": round(value, 4),
                          "recall_by_id": round(by_id, 4), "search_ms": round(search_ms, 2)})
            if nprobe == default:
                recall[backend] = round(value, 4)
                recall_by_id[backend] = round(by_id, 4)
        faiss_index.nprobe = default
        recall_curve[backend] = curve

    def publish(search) -> dict:
        """Publish one new article as the portal does (its row and its search rows in one transaction) and
        time until the running server's `/api/search` finds it; then archive it the same way."""
        from portal.domain.articles import import_articles, to_document
        from portal.domain.models import Article as ArticleRow
        from portal.search import get_search

        new = Article(slug="zyx-scanner-e417", lang="en", category="hardware", tags=["scanner", "warehouse"],
                      title="Zyx handheld scanner shows error E-417 after the firmware update",
                      body="## Symptom\n\nAfter the March firmware update the Zyx handheld scanners in the "
                           "warehouse beep three times and show error E-417 instead of reading barcodes.\n\n"
                           "## Fix\n\nHold the trigger and the power button for ten seconds to roll the scanner "
                           "back to the previous firmware, then dock it so that it picks up the fixed version.\n")
        with portal_app(workdir, ranking_name).app_context():
            session = get_session()
            started = time.perf_counter()
            import_articles(session, [new])
            session.flush()
            get_search().stage_article(session, session.scalar(select(ArticleRow).where(ArticleRow.slug == new.slug)))
            session.commit()
            saved_ms = (time.perf_counter() - started) * 1000
            while new.slug not in search("zyx scanner error E-417 after firmware update"):
                if time.perf_counter() - started > 60:
                    raise RuntimeError("the server never found the published article")
            visible_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            row = session.scalar(select(ArticleRow).where(ArticleRow.slug == new.slug))
            row.status = "archived"
            row.content_hash = to_document(row).content_hash()
            get_search().stage_article(session, row)
            session.commit()
            removed_ms = (time.perf_counter() - started) * 1000
        return {"publish_ms": round(saved_ms, 1), "publish_visible_ms": round(visible_ms, 1),
                "archive_ms": round(removed_ms, 1)}

    api = measure_api(workdir, ranking_name, queries, then=publish)
    publish_ms = {name: api.pop(name) for name in ("publish_ms", "publish_visible_ms", "archive_ms")}
    info = index.info()
    return {
        "chunks": info["chunks"], "articles": info["articles"], "vectors": info["vectors"],
        "approximate": {b: s.approximate for b, s in index.stores.items()},
        "build_s": built["build_s"], "chunks_per_s": round(info["chunks"] / built["build_s"], 1),
        "start_from_database": starts["database"], "start_from_snapshot": starts["snapshot"],
        "query_ms": {name: summary(values) for name, values in parts.items()},
        "api_ms": api, **publish_ms, "recall_at_10": recall, "recall_at_10_by_id": recall_by_id, "recall_curve": recall_curve,
        "build_peak_rss_mb": built["build_peak_rss_mb"], "query_peak_rss_mb": round(rss), "index_mb": round((workdir / "index.npz").stat().st_size / 2**20, 1),
    }


def table(results: list[dict], ranking: str) -> str:
    """The results as a Markdown table with the date and machine."""
    import platform

    lines = [f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()}-core {platform.machine()}, ranking `{ranking}`", "",
             "| chunks | articles | vectors | build | worker start: from the database / from the snapshot "
             "| query: embed / search / fusion p50 (p95) | query total p50 / p95 "
             "| /api/search p50 / p95 | publish one: committed / found by the server | ANN recall@10 "
             "| peak RSS: build / queries / server |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        q = r["query_ms"]
        vectors = ", ".join(f"{b} {n:,}{' (IVF)' if r['approximate'][b] else ''}" for b, n in r["vectors"].items())
        recall = ", ".join(f"{b} {v:.3f} ({r['recall_at_10_by_id'][b]:.3f} by id)"
                           for b, v in r["recall_at_10"].items()) or "exact"
        lines.append(
            f"| {r['chunks']:,} | {r['articles']:,} | {vectors} | {r['build_s']} s ({r['chunks_per_s']} chunks/s) | "
            f"{r['start_from_database']['seconds']} s, {r['start_from_database']['peak_rss_mb']} MB / "
            f"{r['start_from_snapshot']['seconds']} s, {r['start_from_snapshot']['peak_rss_mb']} MB | "
            f"{q['embed_ms']['p50']} / {q['search_ms']['p50']} / {q['fuse_ms']['p50']} ms "
            f"({q['embed_ms']['p95']} / {q['search_ms']['p95']} / {q['fuse_ms']['p95']}) | "
            f"{q['total_ms']['p50']} / {q['total_ms']['p95']} ms | {r['api_ms']['p50']} / {r['api_ms']['p95']} ms | "
            f"{r['publish_ms']} / {r['publish_visible_ms']} ms | {recall} | {r['build_peak_rss_mb']} / {r['query_peak_rss_mb']} / "
            f"{r['api_ms'].get('server_peak_rss_mb', '?')} MB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--ranking", default=DEFAULT_RANKING)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)  # internal: fill a database
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)  # internal: build, print JSON
    parser.add_argument("--start", choices=["database", "snapshot"], help=argparse.SUPPRESS)  # internal
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare_database(args.prepare, args.workdir, args.ranking)
        return 0
    if args.build:
        print(json.dumps(build_index(args.workdir, args.ranking)))
        return 0
    if args.start:
        print(json.dumps(start_worker(args.workdir, args.ranking, args.start == "snapshot")))
        return 0
    if args.one:
        print(json.dumps(run_size(args.one, args.ranking)))
        return 0
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"size {size:,} chunks ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--ranking", args.ranking],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results, args.ranking))
    return 0


if __name__ == "__main__":
    sys.exit(main())
