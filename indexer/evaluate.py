"""Retrieval evaluation on benchmark packs: Recall@k, MRR@10, query latency, baselines, weight tuning."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .articles import read_articles
from .embedders import Embedder, make_embedders
from .index import KnowledgeIndex
from .language import LANGUAGES
from .ranking import CANDIDATES, Ranking, fuse, get_ranking

BASELINES = ("bm25", "sentence-transformers")  # keyword search as the peers do it; plain dense MiniLM


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
        for name in BASELINES:
            baseline = get_ranking(name)
            reused = {b: embedders.get(b) for b in (d.backend for d in baseline.dense)}
            baseline_embedders = {**make_embedders(baseline, model),
                                  **{b: e for b, e in reused.items() if e is not None}}
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

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def collect_proposals(pack_dir: Path, ranking: Ranking, embedders: dict[str, Embedder]):
    """For every query of a pack: its language, relevant slugs and every retriever's proposals."""
    pack_dir = Path(pack_dir)
    index = KnowledgeIndex.create(ranking, embedders)
    index.build(read_articles(pack_dir))
    langs = {slug: entry.lang for slug, entry in index.articles.items()}
    rows = []
    for query in read_queries(pack_dir):
        proposals = index.propose(query.text, ranking.retrievers, CANDIDATES)
        rows.append((query.lang, query.relevant,
                     {name: ({slug: raw for slug, (raw, _) in p.found.items()}, p.pad_to)
                      for name, p in proposals.items()}))
    return rows, langs


def tune_weights(pack_dirs: list[Path], ranking: Ranking, embedders: dict[str, Embedder]) -> dict:
    """The weights per language pair that maximise MRR@10 on the packs whose queries and articles have
    that pair of languages (every pack here has one language of queries and one of articles).

    Returns {pair: {"weights": {...}, "mrr@10": ..., "pack": ...}}; the grid is WEIGHT_GRID per
    retriever, normalised to sum 1.
    """
    best: dict[str, dict] = {}
    for pack_dir in pack_dirs:
        rows, langs = collect_proposals(pack_dir, ranking, embedders)
        pairs = {f"{q}>{a}" for q, _, _ in rows for a in set(langs.values())}
        for pair in sorted(pairs):
            query_lang = pair.split(">")[0]
            seen = set()
            for combo in itertools.product(WEIGHT_GRID, repeat=len(ranking.retrievers)):
                total = sum(combo)
                if not total:
                    continue
                weights = {name: round(w / total, 3) for name, w in zip(ranking.retrievers, combo)}
                key = tuple(weights.values())
                if key in seen:
                    continue
                seen.add(key)
                trial = replace(ranking, weights={p: weights for p in
                                                  (f"{a}>{b}" for a in LANGUAGES for b in LANGUAGES)})
                rankings = []
                for lang, _, proposals in rows:
                    if lang != query_lang:
                        continue
                    parts = fuse(trial, lang, proposals, langs)
                    rankings.append(sorted(parts, key=lambda s: (-sum(parts[s].values()), s))[:10])
                relevant = [r for lang, r, _ in rows if lang == query_lang]
                mrr = rank_metrics(rankings, relevant)["mrr@10"]
                if pair not in best or mrr > best[pair]["mrr@10"]:
                    best[pair] = {"weights": weights, "mrr@10": mrr, "pack": Path(pack_dir).name}
    return best

