"""Spanish questions in a KB with both languages: does the answer win when only one language has it?

    python bench/cross_language.py [--ranking hybrid+e5] [--json]

Builds one index of the dev packs `wiki-es` and `wiki-es-en` together (the same 120 Wikipedia sections in
Spanish and in English; each Spanish/English pair linked as one topic) and searches every Spanish question of
`wiki-es` twice, at the rank of its topic (a topic is listed once):

- ``cross``: with the Spanish version of its answer left out, so only the English one answers (the starter
  set's cross-language questions, at the dev packs' size);
- ``same``: with the English version left out, so only the Spanish one answers (what lifting English articles
  must not break).

Each is reported with the language alignment (``align_languages``, the default) and without it, on the fit
and test halves of the questions (``Query.split``: the alignment's two constants were chosen on the fit
halves). Embedding 240 articles with the ranking's models takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def mixed_articles():
    """Both wiki packs' articles, slugs prefixed by language, each pair linked by a topic."""
    from indexer.articles import read_articles

    articles = []
    for pack, prefix in (("wiki-es", "es-"), ("wiki-es-en", "en-")):
        for article in read_articles(ROOT / "bench" / "packs" / pack):
            articles.append(replace(article, slug=prefix + article.slug, topic="t-" + article.slug))
    return articles


def measure(index, queries, aligned: bool) -> dict:
    """Recall@1 and MRR@10 (by topic) of each setting and half, with or without the alignment."""
    import indexer.index as index_module
    from indexer.evaluate import rank_metrics
    from indexer.ranking import align_languages

    index_module.align_languages = align_languages if aligned else (lambda *args, **kwargs: {})
    try:
        figures = {}
        for setting, left_out, answer in (("cross", "es-", "en-"), ("same", "en-", "es-")):
            for half in ("fit", "test"):
                rankings, relevant = [], []
                for query in (q for q in queries if q.split == half):
                    removed = {left_out + slug for slug in query.relevant}
                    hits = index.search(query.text, k=10, allow=lambda entry: entry.slug not in removed)
                    rankings.append([index.articles[hit.slug].topic for hit in hits])
                    relevant.append([index.articles[answer + slug].topic for slug in query.relevant])
                figures[f"{setting}/{half}"] = rank_metrics(rankings, relevant)
        return figures
    finally:
        index_module.align_languages = align_languages


def main(argv: list[str] | None = None) -> int:
    """Build the mixed index, measure with and without the alignment, print a table (or JSON)."""
    from indexer.embedders import make_embedders
    from indexer.evaluate import read_queries
    from indexer.index import KnowledgeIndex
    from indexer.ranking import get_ranking

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranking", default="hybrid+e5")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ranking = get_ranking(args.ranking)
    index = KnowledgeIndex.create(ranking, make_embedders(ranking))
    index.build(mixed_articles())
    queries = read_queries(ROOT / "bench" / "packs" / "wiki-es")
    results = {"with alignment": measure(index, queries, True), "without": measure(index, queries, False)}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{args.ranking}: {len(index.articles)} articles, {len(queries)} Spanish questions (Recall@1 / MRR@10)\n")
    print("| | cross, fit | cross, test | same, fit | same, test |\n|---|---|---|---|---|")
    for label, figures in results.items():
        cells = [f"{figures[key]['recall@1']:.3f} / {figures[key]['mrr@10']:.3f}"
                 for key in ("cross/fit", "cross/test", "same/fit", "same/test")]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
