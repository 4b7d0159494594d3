"""Where to set the similar-resolved-tickets threshold (portal/similar_tickets.py SIMILARITY_THRESHOLDS).

    .venv/bin/python bench/similar_tickets.py [--backends fake use e5] [--json FILE]

Measured on the demo data generator's problems (portal/demo_scenarios.py PROBLEMS): each problem's solved
ticket reads "subject. solution" (as the page compares a candidate). A ticket being worked is written two
ways: as the demo generator writes it ("subject. description") and, to stand for customers who word the same
problem differently, as each of the problem's search questions. Every (ticket, solved ticket) pair is scored
by cosine with the backend's query embedding; pairs of the same problem are true pairs, all others not (also
the other-language twin of a problem: that makes the threshold a little stricter than it needs to be).

It prints, for every threshold from 0.10 to 0.95, precision / recall / F1 of "show the pair", and the
threshold of the best F1 (ties: the higher threshold, fewer wrong suggestions), and the cost of a first
page view: embedding 2,000 distinct solved tickets (each solution with a distinct suffix), then ranking them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import make_embedder  # noqa: E402
from portal.demo_scenarios import PROBLEMS  # noqa: E402
from portal.similar_tickets import CANDIDATES, SHOWN, problem_text, rank_by_cosine, solved_text  # noqa: E402

GRID = [round(0.10 + 0.01 * i, 2) for i in range(86)]


def tickets() -> list[tuple[int, str]]:
    """(problem index, text of a ticket being worked): the demo ticket and one per search question."""
    rows = []
    for index, problem in enumerate(PROBLEMS):
        rows.append((index, problem_text(problem.subject, problem.description)))
        rows.extend((index, problem_text(question, question)) for question in problem.questions)
    return rows


def pair_scores(backend: str) -> tuple[list[float], list[float]]:
    """(cosines of true pairs, cosines of the other pairs) with this backend."""
    embedder = make_embedder(backend)
    worked = tickets()
    solved = [solved_text(p.subject, p.solution) for p in PROBLEMS]
    left = np.asarray(embedder.encode_queries([text for _, text in worked]), dtype=np.float32)
    right = np.asarray(embedder.encode_queries(solved), dtype=np.float32)
    scores = left @ right.T
    true, other = [], []
    for row, (problem, _) in enumerate(worked):
        for column in range(len(solved)):
            (true if column == problem else other).append(float(scores[row, column]))
    return true, other


def first_view_cost(backend: str) -> dict:
    """Seconds to embed ``CANDIDATES`` distinct solved tickets (the first view in a process) and to rank them
    once embedded (every later view)."""
    embedder = make_embedder(backend)
    texts = [solved_text(p.subject, f"{p.solution} (#{n})") for n in range(CANDIDATES // len(PROBLEMS) + 1)
             for p in PROBLEMS][:CANDIDATES]
    embedder.encode_queries(texts[:8])  # the model loaded before timing
    started = time.perf_counter()
    matrix = np.asarray(embedder.encode_queries(texts), dtype=np.float32)
    embedded = time.perf_counter() - started
    started = time.perf_counter()
    rank_by_cosine(matrix[0], matrix, 0.0, SHOWN)
    ranked = time.perf_counter() - started
    return {"embed_s": round(embedded, 2), "rank_ms": round(ranked * 1000, 1)}


def at_threshold(true: list[float], other: list[float], threshold: float) -> dict:
    """Precision, recall and F1 of showing the pairs at or above ``threshold``."""
    hits = sum(s >= threshold for s in true)
    wrong = sum(s >= threshold for s in other)
    precision = hits / (hits + wrong) if hits + wrong else 1.0
    recall = hits / len(true)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


def main() -> None:
    """Measure every backend asked for and print the chosen thresholds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["fake", "use", "e5"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for backend in args.backends:
        true, other = pair_scores(backend)
        grid = {t: at_threshold(true, other, t) for t in GRID}
        chosen = max(GRID, key=lambda t: (grid[t]["f1"], t))
        results[backend] = {"chosen": chosen, "at_chosen": grid[chosen], "true_pairs": len(true),
                            "other_pairs": len(other),
                            "true_median": round(float(np.median(true)), 3),
                            "other_p99": round(float(np.percentile(other, 99)), 3),
                            "grid": {str(t): grid[t] for t in GRID}}
        results[backend]["first_view"] = first_view_cost(backend)
        figures = grid[chosen]
        print(f"{backend}: threshold {chosen}: precision {figures['precision']:.3f} recall {figures['recall']:.3f} "
              f"F1 {figures['f1']:.3f} ({len(true)} true pairs, median {results[backend]['true_median']}; "
              f"{len(other)} others, 99th percentile {results[backend]['other_p99']}); {CANDIDATES} solved tickets embedded in "
              f"{results[backend]['first_view']['embed_s']} s, ranked in {results[backend]['first_view']['rank_ms']} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
