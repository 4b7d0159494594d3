"""Where to set MESA_DUPLICATE_THRESHOLD: the scores of known duplicates against those of non-duplicates.

    .venv/bin/python bench/duplicate_threshold.py [--ranking hybrid+e5] [--signal confidence|semantic]

The editor warns that a new article may duplicate a published one when its score for the draft (among the
articles ``Search.similar`` lists for the draft's title and text, the call the editor makes) reaches the
threshold. Two scores can be measured (``--signal``): the article's ``confidence`` (the fitted probability
that it answers the text; what Mesa compares) and its ``semantic`` similarity (the cosine of the ranking's
first dense model; what Mesa compared before, and still does on an index without a calibration). Measured on
the starter KB (48 articles, the drafts not indexed) with the starter question set
(bench/starter/queries.jsonl), each question written as the draft that promoting its ticket would make (title
= subject, body = "## Problem" + description):

- **known duplicates**: the ``long`` questions (tickets from the ask-for-help form; 38 of the 40) whose answer
  is a published article: a draft made from that ticket duplicates the article that answers it; the score is
  the best score of an answering article among the draft's similar articles (0 when none is listed);
- **non-duplicates**: for the same drafts, the best score of an article that does *not* answer them
  (the article a wrong warning would name), and for the ``none`` questions (topics the KB does not cover)
  the best score of any article.

It prints both distributions, precision / recall / F1 of "warn" at every threshold from 0.30 to 0.95, and
the threshold of the best F1 (ties: the higher threshold, fewer false alarms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import DEFAULT_RANKING  # noqa: E402

QUERIES = ROOT / "bench" / "starter" / "queries.jsonl"
ARTICLES = ROOT / "articles"
SIMILAR_K = 5  # as the editor asks (kb.possible_duplicates)


def draft_text(question: dict) -> str:
    """What the editor checks for a draft promoted from this question's ticket: title, then body."""
    subject = question.get("subject") or question["query"]
    description = question.get("description") or question["query"]
    return f"{subject}. ## Problem\n\n{description}\n\n## Solution\n"


SIGNALS = {"semantic": lambda hit: hit.semantic or 0.0, "confidence": lambda hit: hit.confidence or 0.0}


def measure(ranking: str, signal) -> tuple[list[float], list[float]]:
    """(scores of known duplicates, scores of non-duplicates) with this ranking; ``signal`` reads a hit's
    score (its ``semantic`` similarity, or its ``confidence``)."""
    from portal import create_app
    from portal.db import get_session
    from portal.domain import articles as article_service
    from portal.domain.models import Article, Base
    from portal.search import get_search
    from sqlalchemy import create_engine, select

    directory = Path(tempfile.mkdtemp(prefix="mesa-duplicates-"))
    url = f"sqlite:///{directory / 'mesa.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(directory), "MESA_DATABASE_URL": url,
                      "MESA_INDEX_PATH": str(directory / "index.npz"), "MESA_RANKING": ranking,
                      "MESA_ENV": "development"})
    duplicates, others = [], []
    with app.app_context():
        session = get_session()
        article_service.import_directory(session, ARTICLES)
        session.commit()
        get_search().rebuild(session)
        published = set(session.scalars(select(Article.slug).where(Article.status == "published",
                                                                   Article.visibility == "public")))
        questions = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
        for question in questions:
            if question["kind"] not in ("long", "none") or question.get("audience") == "agent":
                continue
            relevant = set(question["relevant"]) & published
            if question["kind"] == "long" and not relevant:
                continue  # answered only by a draft: not a duplicate of anything published
            hits = get_search().similar(draft_text(question), k=SIMILAR_K, user=None)
            if relevant:
                duplicates.append(max((signal(h) for h in hits if h.slug in relevant), default=0.0))
            others.append(max((signal(h) for h in hits if h.slug not in relevant), default=0.0))
    app.extensions["mesa_engine"].dispose()
    return duplicates, others


def best_threshold(duplicates: list[float], others: list[float]) -> tuple[float, list[tuple]]:
    """The threshold of the best F1 of warning, and the table (threshold, precision, recall, F1, false alarms)."""
    rows = []
    for step in range(30, 96):
        threshold = step / 100
        caught = sum(score >= threshold for score in duplicates)
        false_alarms = sum(score >= threshold for score in others)
        precision = caught / (caught + false_alarms) if caught + false_alarms else 1.0
        recall = caught / len(duplicates)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((threshold, precision, recall, f1, false_alarms / len(others)))
    best = max(rows, key=lambda row: (round(row[3], 6), row[0]))
    return best[0], rows


def main() -> None:
    """Measure and print the distributions, the table and the chosen threshold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranking", default=DEFAULT_RANKING)
    parser.add_argument("--signal", choices=sorted(SIGNALS), default="confidence")
    args = parser.parse_args()
    duplicates, others = measure(args.ranking, SIGNALS[args.signal])

    def summary(values: list[float]) -> str:
        ordered = sorted(values)
        return (f"n={len(values)} min={ordered[0]:.3f} p10={ordered[len(ordered) // 10]:.3f} "
                f"median={statistics.median(ordered):.3f} p90={ordered[(9 * len(ordered)) // 10]:.3f} "
                f"max={ordered[-1]:.3f}")

    print(f"ranking {args.ranking}, signal {args.signal}")
    print(f"known duplicates: {summary(duplicates)}")
    print(f"non-duplicates:   {summary(others)}")
    threshold, rows = best_threshold(duplicates, others)
    print("| threshold | precision | recall | F1 | false alarms |\n|---|---|---|---|---|")
    for row in rows:
        if round(row[0] * 100) % 5 == 0 or row[0] == threshold:
            print(f"| {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} | {row[4]:.0%} |")
    print(f"best F1 at threshold {threshold:.2f}")


if __name__ == "__main__":
    main()
