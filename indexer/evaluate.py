"""Retrieval evaluation on benchmark packs: Recall@k, MRR@10, query latency, baselines, weight tuning."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .articles import read_articles
from .embedders import Embedder, make_embedders
from .index import KnowledgeIndex
from .ranking import CANDIDATES, Ranking, get_ranking, standardise

# The baselines of `eval --compare`: keyword search as the peers do it, and plain dense MiniLM (cosine).
BASELINES = {"bm25": "bm25", "dense": "sentence-transformers"}


@dataclass
class Query:
    """One benchmark query and the slugs of the articles that answer it."""

    id: str
    text: str
    lang: str
    relevant: list[str]


def read_queries(pack_dir: Path) -> list[Query]:
    """Read ``queries.jsonl`` of a pack; errors name the line."""
    path = Path(pack_dir) / "queries.jsonl"
    queries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries.append(Query(str(row["id"]), row["query"], row.get("lang", ""), list(row["relevant"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a query line ({exc})") from None
    return queries


def rank_metrics(rankings: list[list[str]], relevant: list[list[str]]) -> dict:
    """Recall@1, Recall@5 and MRR@10 of ranked slug lists against the relevant slugs of each query."""
    if not rankings:
        return {"recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    r1 = r5 = rr = 0.0
    for ranking, wanted in zip(rankings, relevant):
        wanted_set = set(wanted)
        first = next((i for i, slug in enumerate(ranking[:10]) if slug in wanted_set), None)
        if first is not None:
            rr += 1.0 / (first + 1)
            r1 += first < 1
            r5 += first < 5
    n = len(rankings)
    return {"recall@1": round(r1 / n, 4), "recall@5": round(r5 / n, 4), "mrr@10": round(rr / n, 4)}


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def evaluate_pack(pack_dir: Path, ranking: Ranking | str, embedders: dict[str, Embedder]) -> dict:
    """Build a throwaway index of a pack with a ranking, run every query one at a time, report the metrics.

    Latency is per query, after a warm-up: the query's embedding(s), the searches and the fusion.
    """
    ranking = get_ranking(ranking) if isinstance(ranking, str) else ranking
    pack_dir = Path(pack_dir)
    articles = read_articles(pack_dir)
    queries = read_queries(pack_dir)
    index = KnowledgeIndex.create(ranking, embedders)
    index.build(articles)
    for query in queries[:3]:  # warm-up: the first queries pay for lazy loading
        index.search(query.text, k=10)
    rankings, latencies = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query.text, k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        rankings.append([hit.slug for hit in hits])
    return {
        "pack": pack_dir.name,
        "config": ranking.name,
        "articles": len(articles),
        "queries": len(queries),
        **rank_metrics(rankings, [q.relevant for q in queries]),
        "latency_ms": {"p50": round(statistics.median(latencies), 2) if latencies else 0.0,
                       "p95": round(percentile(latencies, 95), 2)},
    }


def evaluate_with_baselines(pack_dir: Path, ranking: Ranking | str, model: str = "",
                            compare: bool = False) -> dict:
    """``evaluate_pack`` for a ranking, plus (with ``compare``) the BM25 and plain dense baselines."""
    ranking = get_ranking(ranking) if isinstance(ranking, str) else ranking
    embedders = make_embedders(ranking, model)
    result = evaluate_pack(pack_dir, ranking, embedders)
    if compare:
        result["baselines"] = {}
        for name, ranking_name in BASELINES.items():
            baseline = get_ranking(ranking_name)
            # the ranking's own embedders where the baseline uses the same backend (a model loads once)
            baseline_embedders = {**make_embedders(baseline, model),
                                  **{d.backend: embedders[d.backend] for d in baseline.dense
                                     if d.backend in embedders}}
            figures = evaluate_pack(pack_dir, baseline, baseline_embedders)
            result["baselines"][name] = {key: figures[key] for key in
                                         ("recall@1", "recall@5", "mrr@10", "latency_ms")}
    return result


def format_result(result: dict) -> str:
    """The result of ``evaluate_with_baselines`` as a few readable lines."""
    def line(name: str, figures: dict) -> str:
        latency = figures["latency_ms"]
        return (f"  {name:<22} Recall@1 {figures['recall@1']:.3f}  Recall@5 {figures['recall@5']:.3f}  "
                f"MRR@10 {figures['mrr@10']:.3f}  latency p50 {latency['p50']:.1f} ms  p95 {latency['p95']:.1f} ms")

    lines = [f"{result['pack']}: {result['articles']} articles, {result['queries']} queries",
             line(result["config"], result)]
    for name, figures in result.get("baselines", {}).items():
        lines.append(line(f"baseline {name}", figures))
    return "\n".join(lines)


def markdown_table(results: list[dict]) -> str:
    """Results of several packs as a Markdown table (baselines as extra rows), with the date and machine."""
    import os
    import platform

    rows = ["| pack | articles | queries | config | Recall@1 | Recall@5 | MRR@10 | query p50 / p95 |",
            "|---|---|---|---|---|---|---|---|"]
    for result in results:
        for name, figures in [(result["config"], result), *result.get("baselines", {}).items()]:
            label = name if name == result["config"] else f"baseline {name}"
            rows.append(f"| {result['pack']} | {result['articles']} | {result['queries']} | {label} | "
                        f"{figures['recall@1']:.3f} | {figures['recall@5']:.3f} | {figures['mrr@10']:.3f} | "
                        f"{figures['latency_ms']['p50']:.1f} / {figures['latency_ms']['p95']:.1f} ms |")
    machine = f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}"
    return "\n".join([f"{time.strftime('%Y-%m-%d')}, {machine}", "", *rows])


# ----- tuning the weights of a ranking on the dev packs -------------------------------------------

WEIGHT_STEP = 0.05


def weight_grid(retrievers: int, step: float = WEIGHT_STEP) -> np.ndarray:
    """Every way to share 1 among the retrievers in steps of ``step`` (one row per way)."""
    units = round(1 / step)
    rows = [combo for combo in itertools.product(range(units + 1), repeat=retrievers) if sum(combo) == units]
    return np.asarray(rows, dtype=np.float64) / units


def collect_proposals(pack_dir: Path, ranking: Ranking, embedders: dict[str, Embedder]):
    """For every query of a pack: its language, relevant slugs and every retriever's proposals."""
    pack_dir = Path(pack_dir)
    index = KnowledgeIndex.create(ranking, embedders)
    index.build(read_articles(pack_dir))
    langs = {slug: entry.lang for slug, entry in index.articles.items()}
    rows = []
    for query in read_queries(pack_dir):
        rows.append((query.lang, query.relevant, index.propose(query.text, ranking.retrievers, CANDIDATES)))
    return rows, langs


def tune_weights(pack_dirs: list[Path], ranking: Ranking, embedders: dict[str, Embedder],
                 step: float = WEIGHT_STEP) -> dict:
    """The weights per language pair ("query>article") that maximise MRR@10, over a grid in ``step``s.

    A query counts for the pair of its language and its relevant article's; within one pack every
    proposal is fused with the same trial weights, so a pack should hold one language of articles (the
    dev packs do). Returns {pair: {"weights": {...}, "mrr@10": ..., "pack": ...}}.
    """
    grid = weight_grid(len(ranking.retrievers), step)
    best: dict[str, dict] = {}
    for pack_dir in pack_dirs:
        rows, langs = collect_proposals(pack_dir, ranking, embedders)
        reciprocal: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for query_lang, relevant, proposals in rows:
            pair = f"{query_lang}>{langs.get(relevant[0], query_lang)}"
            slugs = sorted({slug for proposal in proposals.values() for slug in proposal.found})
            z = np.zeros((len(slugs), len(ranking.retrievers)))
            for column, name in enumerate(ranking.retrievers):
                proposal = proposals.get(name)
                if proposal is None:
                    continue
                values, floor = standardise([raw for raw, _ in proposal.found.values()], proposal.pad_to)
                by_slug = dict(zip(proposal.found, values.tolist()))
                z[:, column] = [by_slug.get(slug, floor) for slug in slugs]
            scores = z @ grid.T  # candidates x weightings
            wanted = [i for i, slug in enumerate(slugs) if slug in relevant]
            counts[pair] = counts.get(pair, 0) + 1
            if not wanted:
                reciprocal.setdefault(pair, np.zeros(len(grid)))
                continue
            rank = (scores > scores[wanted].max(axis=0)).sum(axis=0)
            reciprocal[pair] = reciprocal.get(pair, np.zeros(len(grid))) + np.where(rank < 10, 1 / (rank + 1), 0)
        for pair, total in reciprocal.items():
            mrr = total / counts[pair]
            top = int(np.argmax(mrr))
            if pair not in best or mrr[top] > best[pair]["mrr@10"]:
                best[pair] = {"weights": dict(zip(ranking.retrievers, grid[top].round(3).tolist())),
                              "mrr@10": round(float(mrr[top]), 4), "pack": Path(pack_dir).name}
    return best
