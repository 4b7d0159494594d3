"""Retrieval evaluation on benchmark packs: Recall@k, MRR@10, query latency, confidence, baselines, tuning."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .articles import read_articles
from .confidence import TOP_RESULTS, Calibration, Sample, auroc, fit_calibration
from .embedders import Embedder, make_embedders
from .index import KnowledgeIndex
from .ranking import CANDIDATES, Ranking, get_ranking, standardised_scores

# The baselines of `eval --compare`: keyword search as the peers do it, and plain dense MiniLM (cosine).
BASELINES = {"bm25": "bm25", "dense": "sentence-transformers"}


@dataclass
class Query:
    """One benchmark query and the slugs of the articles that answer it (none: no article does).

    ``kind`` groups queries in reports (the starter set: short, typo, symptom, long, cross, none);
    ``audience`` "agent" may be answered by internal articles, anyone else only by public ones.
    """

    id: str
    text: str
    lang: str
    relevant: list[str]
    kind: str = ""
    audience: str = "customer"

    @property
    def split(self) -> str:
        """"fit" or "test", fixed by the answering article (or the query itself when none answers), so
        queries of one article never land on both sides."""
        key = self.relevant[0] if self.relevant else self.id
        return "fit" if hashlib.sha1(key.encode("utf-8")).digest()[0] % 2 == 0 else "test"


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
                queries.append(Query(str(row["id"]), row["query"], row.get("lang", ""), list(row["relevant"]),
                                     row.get("kind", ""), row.get("audience", "customer")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a query line ({exc})") from None
    return queries


def rank_metrics(rankings: list[list[str]], relevant: list[list[str]]) -> dict:
    """Recall@1, Recall@5 and MRR@10 of ranked slug lists against the relevant slugs of each query
    (queries that no article answers are left out)."""
    pairs = [(ranking, wanted) for ranking, wanted in zip(rankings, relevant) if wanted]
    if not pairs:
        return {"recall@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0}
    r1 = r5 = rr = 0.0
    for ranking, wanted in pairs:
        wanted_set = set(wanted)
        first = next((i for i, slug in enumerate(ranking[:10]) if slug in wanted_set), None)
        if first is not None:
            rr += 1.0 / (first + 1)
            r1 += first < 1
            r5 += first < 5
    n = len(pairs)
    return {"recall@1": round(r1 / n, 4), "recall@5": round(r5 / n, 4), "mrr@10": round(rr / n, 4)}


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def pack_index(pack_dir: Path, ranking: Ranking, embedders: dict[str, Embedder]) -> KnowledgeIndex:
    """A throwaway index of a pack's published articles."""
    index = KnowledgeIndex.create(ranking, embedders)
    index.build([a for a in read_articles(pack_dir) if a.status == "published"])
    return index


def _audience_filter(query: Query, removed: set[str] = frozenset()):
    """What this query's asker may be answered with (and, for leave-the-answer-out, without its answers)."""
    agent = query.audience == "agent"
    return lambda entry: (agent or entry.visibility == "public") and entry.slug not in removed


@dataclass
class QueryRun:
    """A query's ranking, and the confidence samples of its search and of its leave-the-answer-out search."""

    query: Query
    ranking: list[str]
    full: list[Sample]
    removed: list[Sample]
    latency_ms: float


def run_queries(index: KnowledgeIndex, queries: list[Query], k: int = 10) -> list[QueryRun]:
    """Search every query one at a time (after a warm-up), then again with its answers left out.

    A query's relevant articles that the index does not hold (drafts) are dropped: a query that only a
    draft answers is one the published KB cannot answer.
    """
    for query in queries[:3]:  # warm-up: the first queries pay for lazy loading
        index.search(query.text, k=k)
    runs = []
    for query in queries:
        query = replace(query, relevant=[slug for slug in query.relevant if slug in index.articles])
        features: list = []
        started = time.perf_counter()
        hits = index.search(query.text, k=k, allow=_audience_filter(query), features=features)
        latency = (time.perf_counter() - started) * 1000
        full = _samples(hits, features, query.relevant)
        if query.relevant:
            features = []
            hidden = index.search(query.text, k=TOP_RESULTS, allow=_audience_filter(query, set(query.relevant)),
                                  features=features)
            removed = _samples(hidden, features, [])
        else:  # nothing answers it: the search itself is what an unanswerable question looks like
            removed = [s for s in full if s.rank < TOP_RESULTS]
        runs.append(QueryRun(query, [hit.slug for hit in hits], full, removed, latency))
    return runs


def _samples(hits, features, relevant: list[str]) -> list[Sample]:
    return [Sample(pair, row, hit.slug in relevant, rank)
            for rank, (hit, (pair, row)) in enumerate(zip(hits, features))]


def confidence_metrics(runs: list[QueryRun], calibration: Calibration | None, threshold: float | None = None) -> dict:
    """How well the confidence separates right answers from questions the KB cannot answer.

    AUROC between the first result's confidence when it is correct and when the query's answers were left
    out (or no article answers it); at the threshold, the share of those unanswerable searches that
    abstain and the share of correct first results that stay above it. None without a calibration.
    """
    if calibration is None:
        return {}
    threshold = calibration.threshold if threshold is None else threshold

    def first(samples: list[Sample]) -> float | None:
        if not samples:
            return 0.0  # no result at all: abstained
        model = calibration.model_for(samples[0].pair)
        return float(model.probability([samples[0].features])[0]) if model is not None else None

    correct = [c for run in runs if run.full and run.full[0].answers and (c := first(run.full)) is not None]
    unanswerable = [c for run in runs if (c := first(run.removed)) is not None]
    return {"auroc": None if (a := auroc(correct, unanswerable)) is None else round(a, 4),
            "threshold": threshold,
            "abstain": round(sum(c < threshold for c in unanswerable) / len(unanswerable), 4) if unanswerable else None,
            "kept": round(sum(c >= threshold for c in correct) / len(correct), 4) if correct else None,
            "correct": len(correct), "unanswerable": len(unanswerable)}


def evaluate_pack(pack_dir: Path, ranking: Ranking | str, embedders: dict[str, Embedder],
                  calibration: Calibration | None = None) -> dict:
    """Build a throwaway index of a pack with a ranking, run every query one at a time, report the metrics.

    Latency is per query, after a warm-up: the query's embedding(s), the searches and the fusion. The
    confidence figures are on the queries the calibration was not fitted on (``Query.split`` "test"),
    with the index's own calibration unless another is given. Packs whose queries have kinds also get
    the figures per kind.
    """
    ranking = get_ranking(ranking) if isinstance(ranking, str) else ranking
    pack_dir = Path(pack_dir)
    index = pack_index(pack_dir, ranking, embedders)
    queries = read_queries(pack_dir)
    runs = run_queries(index, queries)
    calibration = calibration or index.calibration
    result = _figures(runs, calibration)
    result.update(pack=pack_dir.name, config=ranking.name, articles=len(index.articles), queries=len(queries))
    kinds = sorted({q.kind for q in queries if q.kind})
    if kinds:
        result["kinds"] = {kind: {**_figures([r for r in runs if r.query.kind == kind], calibration),
                                  "queries": sum(q.kind == kind for q in queries)} for kind in kinds}
    return result


def _figures(runs: list[QueryRun], calibration: Calibration | None) -> dict:
    latencies = [run.latency_ms for run in runs]
    return {
        **rank_metrics([run.ranking for run in runs], [run.query.relevant for run in runs]),
        "latency_ms": {"p50": round(statistics.median(latencies), 2) if latencies else 0.0,
                       "p95": round(percentile(latencies, 95), 2)},
        "confidence": confidence_metrics([run for run in runs if run.query.split == "test"], calibration),
    }


def calibrate(pack_dirs: list[Path], ranking: Ranking, embedders: dict[str, Embedder]) -> tuple[Calibration, list[dict]]:
    """Fit the confidence of a ranking on the "fit" half of the packs' queries; report each pack's "test"
    half with the new fit. Returns the calibration and a report per pack."""
    per_pack, samples, signature = [], [], ""
    for pack_dir in pack_dirs:
        index = pack_index(pack_dir, ranking, embedders)
        signature = index.signature()
        runs = run_queries(index, read_queries(pack_dir), k=TOP_RESULTS)
        per_pack.append((Path(pack_dir).name, runs))
        for run in runs:  # each search's first result: what decides whether the KB answered
            if run.query.split == "fit":
                samples.extend(run.full[:1] + run.removed[:1])
    calibration = fit_calibration(samples, signature, {
        "packs": [name for name, _ in per_pack], "at": time.strftime("%Y-%m-%d"),
        "split": "queries whose answering article hashes to 'fit' (Query.split)"})
    report = [{"pack": name, **confidence_metrics([r for r in runs if r.query.split == "test"], calibration)}
              for name, runs in per_pack]
    return calibration, report


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
    if result.get("confidence"):
        lines.append(f"  confidence (held-out half): {format_confidence(result['confidence'])}")
    for kind, figures in result.get("kinds", {}).items():
        lines.append(line(f"{kind} ({figures['queries']})", figures))
    return "\n".join(lines)


def format_confidence(figures: dict) -> str:
    """Confidence figures in one line."""
    def share(value):
        return "-" if value is None else f"{value:.3f}"

    return (f"AUROC {share(figures.get('auroc'))}, at threshold {figures['threshold']:.3f}: "
            f"{share(figures.get('abstain'))} of {figures['unanswerable']} unanswerable abstain, "
            f"{share(figures.get('kept'))} of {figures['correct']} correct first results kept")


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
    lines = [f"{time.strftime('%Y-%m-%d')}, {machine}", "", *rows]
    confident = [r for r in results if r.get("confidence")]
    if confident:
        lines += ["", "Confidence on the held-out half of each pack (fitted on the other half):", "",
                  "| pack | AUROC | threshold | unanswerable that abstain | correct first results kept |",
                  "|---|---|---|---|---|"]
        for r in confident:
            c = r["confidence"]
            lines.append(f"| {r['pack']} | {_cell(c.get('auroc'))} | {c['threshold']:.3f} | "
                         f"{_cell(c.get('abstain'))} of {c['unanswerable']} | {_cell(c.get('kept'))} of {c['correct']} |")
    kinds = [r for r in results if r.get("kinds")]
    for r in kinds:
        lines += ["", f"{r['pack']} by kind of question:", "",
                  "| kind | queries | Recall@1 | MRR@10 | AUROC | abstain | kept |", "|---|---|---|---|---|---|---|"]
        for kind, f in r["kinds"].items():
            c = f.get("confidence") or {}
            lines.append(f"| {kind} | {f['queries']} | {f['recall@1']:.3f} | {f['mrr@10']:.3f} | "
                         f"{_cell(c.get('auroc'))} | {_cell(c.get('abstain'))} | {_cell(c.get('kept'))} |")
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


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
                by_slug, floors = standardised_scores(proposal, langs)
                z[:, column] = [by_slug.get(slug, floors[langs[slug]]) for slug in slugs]
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
