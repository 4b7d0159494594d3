"""How sure Mesa is that a result answers the query: a probability fitted on data, not a hand-set rule.

The fused score ranks well but is relative (z-scores over each retriever's own candidates): the best of
ten bad candidates scores as high as the best of ten good ones. Confidence uses absolute signals instead:

- each dense model's raw cosine for the article, and its margin over the best other article;
- BM25's raw score as a share of what the query's words could score at most (so long and short queries
  are on one scale), and its margin;
- the fused score's margin to the next article and its gap to the first;
- the query's length.

A logistic regression per language pair ("es>en": Spanish query, English article) turns them into a
probability. It is fitted (``fit_calibration``) on benchmark queries: the first result of a search is a
positive when it is a relevant article, a negative when it is not, and every query is searched a second
time with its answers left out, whose first result is a negative (what the KB looks like to a question it
cannot answer). So about half the fit searches have no answer, and the probability is "this first result
answers" under that mix; the classes are not re-weighted, so a pair whose signals cannot tell (the fake
embedder across languages) stays low instead of drifting to one half. The
fitted calibration is saved per ranking and models (``calibration/<ranking>.json``), copied into an
index's metadata when it is built, and re-fitted with ``python -m indexer calibrate``.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

CALIBRATION_DIR = Path(__file__).with_name("calibration")
KEPT_TARGET = 0.96  # the shipped threshold keeps this share of the correct first results of the fit data
TOP_RESULTS = 3  # results of a search with the answers left out that an evaluation keeps
# A language pair gets a model of its own from this many samples; one with fewer uses its mirror's. (Fitted
# on the ~50 English->Spanish samples of the starter set alone, en>es came out overconfident: unrelated
# Spanish articles above the threshold for English questions.)
MIN_PAIR_SAMPLES = 200


@dataclass
class PairModel:
    """A logistic regression over named features, standardised with the fit data's mean and scale."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def probability(self, rows: list[dict[str, float]]) -> np.ndarray:
        """P(answers) for each feature row."""
        x = np.asarray([[row.get(name, 0.0) for name in self.features] for row in rows], dtype=np.float64)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class Calibration:
    """The fitted confidence of one ranking with its models: a model per language pair and the threshold."""

    signature: str
    models: dict[str, PairModel]
    threshold: float
    fitted: dict = field(default_factory=dict)  # on what, when, how many samples

    def model_for(self, pair: str) -> PairModel | None:
        """The model of a language pair, else its mirror ("en>es" for "es>en"), else any of the query's."""
        if pair in self.models:
            return self.models[pair]
        query_lang, article_lang = pair.split(">")
        mirror = f"{article_lang}>{query_lang}"
        if mirror in self.models:
            return self.models[mirror]
        return next((m for p, m in self.models.items() if p.startswith(f"{query_lang}>")), None)

    @property
    def stamp(self) -> str:
        """Identifies this fit (part of a snapshot file's fingerprint)."""
        import hashlib

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """A JSON-ready copy (what index metadata and calibration files hold)."""
        return {"signature": self.signature, "threshold": self.threshold, "fitted": self.fitted,
                "models": {pair: asdict(model) for pair, model in self.models.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """The calibration ``to_dict`` wrote."""
        return cls(data["signature"], {pair: PairModel(**m) for pair, m in data["models"].items()},
                   float(data["threshold"]), data.get("fitted", {}))


def calibration_path(ranking: str, directory: Path = CALIBRATION_DIR) -> Path:
    """Where the shipped calibration of a ranking lives."""
    return Path(directory) / f"{ranking}.json"


def load_calibration(ranking: str, signature: str, directory: Path = CALIBRATION_DIR) -> Calibration | None:
    """The shipped calibration of a ranking, if it was fitted for exactly these models (else None: the
    cosines of another model are on another scale, and a confidence fitted on them would pretend)."""
    path = calibration_path(ranking, directory)
    if not path.exists():
        return None
    calibration = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return calibration if calibration.signature == signature else None


def save_calibration(calibration: Calibration, ranking: str, directory: Path = CALIBRATION_DIR) -> Path:
    """Write a calibration file (sorted keys, so a re-fit shows as a readable diff)."""
    path = calibration_path(ranking, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def result_features(ranked: list[tuple[str, float]], proposals: dict, retrievers: dict[str, list[str]],
                    lexical_ceiling: dict[str, float], query_words: int,
                    topic_of: Callable[[str], str] | None = None) -> list[dict[str, float]]:
    """The confidence features of each ranked article (best first).

    ``ranked``: (slug, fused score) of one article per topic, one more than the results wanted when there is
    one (for the margin); ``topic_of``: slug -> its topic ("" for none), so that an article's margin is over the best article of
    another topic, not over its own translation (which says the same);
    ``proposals``: each retriever's Proposal; ``retrievers``: slug -> the retrievers that count for its
    language pair; ``lexical_ceiling``: slug -> what BM25 could score at most for this query in that
    article's language.
    """
    topic_of = topic_of or (lambda slug: "")
    best_other = {name: _best_few(p.found) for name, p in proposals.items()}
    floors = {name: min((raw for raw, _ in p.found.values()), default=0.0) for name, p in proposals.items()}
    rows = []
    top = ranked[0][1] if ranked else 0.0
    for position, (slug, fused) in enumerate(ranked):
        following = ranked[position + 1][1] if position + 1 < len(ranked) else fused
        row = {"fused_margin": fused - following, "fused_gap": top - fused,
               "query_words": math.log1p(query_words)}
        for name in retrievers.get(slug, []):
            proposal = proposals.get(name)
            if proposal is None:
                continue
            found = proposal.found.get(slug)
            if name == "bm25":
                ceiling = lexical_ceiling.get(slug, 0.0) or 1.0
                raw = found[0] if found else 0.0
                row["bm25_share"] = raw / ceiling
                row["bm25_margin"] = (raw - _other(best_other[name], slug, 0.0, topic_of)) / ceiling
            else:
                raw = found[0] if found else floors[name]
                row[f"{name}_cos"] = raw
                row[f"{name}_margin"] = raw - _other(best_other[name], slug, floors[name], topic_of)
        rows.append(row)
    return rows


def _best_few(found: dict[str, tuple[float, int]], few: int = 4) -> list[tuple[str, float]]:
    return heapq.nlargest(few, ((slug, raw) for slug, (raw, _) in found.items()), key=lambda item: item[1])


def _other(best: list[tuple[str, float]], slug: str, default: float, topic_of: Callable[[str], str]) -> float:
    """The best score among the articles of other topics (an article without a topic is a topic of its own)."""
    topic = topic_of(slug) or slug
    return next((raw for other, raw in best if (topic_of(other) or other) != topic), default)


# ----- fitting -------------------------------------------------------------------------------------

@dataclass
class Sample:
    """One result of a benchmark search: its language pair, features, whether it answers, and its rank."""

    pair: str
    features: dict[str, float]
    answers: bool
    rank: int


def fit_pair(samples: list[Sample]) -> PairModel:
    """A logistic regression on one language pair's samples (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    names = sorted({name for sample in samples for name in sample.features})
    x = np.asarray([[s.features.get(n, 0.0) for n in names] for s in samples], dtype=np.float64)
    y = np.asarray([s.answers for s in samples], dtype=np.int64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit((x - mean) / scale, y)
    return PairModel(names, mean.round(6).tolist(), scale.round(6).tolist(),
                     model.coef_[0].round(6).tolist(), round(float(model.intercept_[0]), 6))


def fit_calibration(samples: list[Sample], signature: str, fitted: dict | None = None) -> Calibration:
    """A model per language pair with both classes among its samples, and the threshold that keeps
    ``KEPT_TARGET`` of the correct first results."""
    by_pair: dict[str, list[Sample]] = {}
    for sample in samples:
        by_pair.setdefault(sample.pair, []).append(sample)
    models = {pair: fit_pair(group) for pair, group in sorted(by_pair.items())
              if len({s.answers for s in group}) == 2 and len(group) >= MIN_PAIR_SAMPLES}
    if not models:
        raise ValueError("too few samples to fit a confidence (need answered and unanswered results)")
    calibration = Calibration(signature, models, 0.5, dict(fitted or {}))
    correct_first = [s for s in samples if s.rank == 0 and s.answers and s.pair in models]
    confidences = np.sort(np.concatenate([models[p].probability([s.features for s in correct_first if s.pair == p])
                                          for p in {s.pair for s in correct_first}]))
    calibration.threshold = round(float(confidences[int(math.floor((1 - KEPT_TARGET) * len(confidences)))]), 3)
    calibration.fitted.update(samples=len(samples), pairs={p: len(g) for p, g in sorted(by_pair.items())})
    return calibration


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """Area under the ROC curve: the chance that a positive scores above a negative (ties count half)."""
    if not positives or not negatives:
        return None
    pos, neg = np.asarray(positives), np.sort(np.asarray(negatives))
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))
