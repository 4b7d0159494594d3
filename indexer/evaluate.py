"""Retrieval evaluation on benchmark packs: Recall@k, MRR@10 and query latency."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .articles import read_articles
from .embedders import Embedder
from .index import KnowledgeIndex


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


def evaluate_pack(pack_dir: Path, embedder: Embedder, config: str = "") -> dict:
    """Build a throwaway index of a pack, run every query one at a time, and report the metrics."""
    pack_dir = Path(pack_dir)
    articles = read_articles(pack_dir)
    queries = read_queries(pack_dir)
    index = KnowledgeIndex.create(embedder)
    index.build(articles)
    if queries:  # warm-up: the first query pays for lazy loading
        index.search(queries[0].text, k=10)
    rankings, latencies = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query.text, k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        rankings.append([hit.slug for hit in hits])
    result = {
        "pack": pack_dir.name,
        "config": config or f"{embedder.backend}:{embedder.model}",
        "articles": len(articles),
        "queries": len(queries),
        **rank_metrics(rankings, [q.relevant for q in queries]),
        "latency_ms": {"p50": round(statistics.median(latencies), 2) if latencies else 0.0,
                       "p95": round(percentile(latencies, 95), 2)},
    }
    return result
