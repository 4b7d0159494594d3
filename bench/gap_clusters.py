"""How well Mesa groups the questions no article answers into the articles to write (indexer/clustering.py).

    python bench/gap_clusters.py [--backends e5 use fake] [--share 0.3] [--json FILE]

For each pack (bench/packs/*), a share of its articles is hidden and their queries are fed as unanswered
questions; the clustering should give each hidden article one group of its own. Reported per embedder
backend and distance threshold: the adjusted Rand index between the groups and the hidden articles, purity
(the share of questions in a group whose majority article is theirs), and the share of hidden articles that
got a group of their own (a group of 2 or more whose majority is that article and that holds at least half
of its questions). The threshold is chosen on `wiki-es` (the best adjusted Rand index) and reported on the
other, and on `mixed` (the hidden queries of faq-en and wiki-es together: both languages at once). Also the
time to embed and cluster 2,000 questions (about a busy month).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import make_embedder  # noqa: E402
from indexer.clustering import cluster_vectors  # noqa: E402

PACKS = ("faq-en", "wiki-es")  # wiki-es-en asks the same Spanish questions as wiki-es (English answers)
TUNE_ON = "wiki-es"
GRID = (0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def hidden_queries(pack: str, share: float, seed: int) -> list[tuple[str, str]]:
    """(query, article) of the queries whose article is in the hidden share of the pack's articles."""
    rows = [json.loads(line) for line in (ROOT / "bench" / "packs" / pack / "queries.jsonl").open()]
    articles = sorted({r["relevant"][0] for r in rows if r.get("relevant")})
    hidden = set(random.Random(seed).sample(articles, max(2, int(len(articles) * share))))
    return [(r["query"], r["relevant"][0]) for r in rows if r.get("relevant") and r["relevant"][0] in hidden]


def score(labels_true: list[str], clusters) -> dict:
    """Adjusted Rand index, purity and the share of articles with a group of their own."""
    from sklearn.metrics import adjusted_rand_score

    predicted = [0] * len(labels_true)
    majority_of = {}
    pure = 0
    for number, cluster in enumerate(clusters):
        for row in cluster.members:
            predicted[row] = number
        counts = Counter(labels_true[row] for row in cluster.members)
        article, count = counts.most_common(1)[0]
        pure += count
        if cluster.size >= 2:
            majority_of.setdefault(article, []).append(count)
    sizes = Counter(labels_true)
    own = sum(1 for article, counts in majority_of.items() if max(counts) * 2 >= sizes[article])
    return {"ari": round(adjusted_rand_score(labels_true, predicted), 3), "purity": round(pure / len(labels_true), 3),
            "own_group": round(own / len(sizes), 3), "groups": len(clusters), "articles": len(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["e5", "use", "fake"])
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sets = {pack: hidden_queries(pack, args.share, args.seed) for pack in PACKS}
    sets["mixed"] = sets["faq-en"] + sets["wiki-es"]
    results = {}
    for backend in args.backends:
        embedder = make_embedder(backend)
        vectors = {name: embedder.encode_queries([q for q, _ in rows]) for name, rows in sets.items()}
        grid = {}
        for threshold in GRID:
            grid[threshold] = {name: score([a for _, a in rows], cluster_vectors(vectors[name], threshold))
                               for name, rows in sets.items()}
        chosen = max(GRID, key=lambda t: grid[t][TUNE_ON]["ari"])
        month = [q for q, _ in sets["mixed"]]
        month = (month * (2000 // len(month) + 1))[:2000]
        started = time.perf_counter()
        month_vectors = embedder.encode_queries(month)
        embedded = time.perf_counter() - started
        started = time.perf_counter()
        cluster_vectors(month_vectors, chosen)
        clustered = time.perf_counter() - started
        results[backend] = {"chosen_threshold": chosen, "at_chosen": grid[chosen],
                            "grid": {str(t): grid[t] for t in GRID},
                            "month_2000": {"embed_s": round(embedded, 2), "cluster_s": round(clustered, 2)}}
        print(f"{backend}: threshold {chosen} (best adjusted Rand index on {TUNE_ON})")
        for name, figures in grid[chosen].items():
            print(f"  {name:<11} ARI {figures['ari']:.3f}  purity {figures['purity']:.3f}  own group "
                  f"{figures['own_group']:.3f}  ({figures['groups']} groups for {figures['articles']} hidden articles)")
        print(f"  2,000 questions: embedded in {embedded:.2f} s, clustered in {clustered:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
