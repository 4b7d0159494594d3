"""Keyword search: Okapi BM25 over whole articles, with a Snowball stemmer for each article's language.

bm25s (the reference we test against) precomputes every document's scores with the corpus statistics
baked in, so one new article would mean re-indexing them all. Publishing must take well under a second,
so this index keeps plain term counts and scores at query time with Lucene's BM25 formula: adding or
removing one article touches only that article's terms.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import numpy as np

from .language import LANGUAGES
from .memory import release_free_memory

_WORD_RE = re.compile(r"\w+", re.UNICODE)
K1, B = 1.5, 0.75  # bm25s' defaults, Lucene's formula


@lru_cache(maxsize=None)
def _stemmer(lang: str):
    import Stemmer  # PyStemmer: the Snowball stemmers

    return Stemmer.Stemmer({"es": "spanish", "en": "english"}[lang])


@lru_cache(maxsize=None)
def _stopwords(lang: str) -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_SPANISH

    return frozenset(STOPWORDS_SPANISH if lang == "es" else STOPWORDS_EN)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def tokenize(text: str, lang: str) -> list[str]:
    """The searchable terms of a text in a language: words, less stop words, stemmed, accents folded."""
    stop = _stopwords(lang)
    words = [w for w in _WORD_RE.findall(text.lower()) if w not in stop]
    return [_fold(stem) for stem in _stemmer(lang).stemWords(words)]


def query_terms(text: str, lang: str) -> dict[str, str]:
    """The query's terms in a language, each with the first word that produced it (for explanations)."""
    stop = _stopwords(lang)
    words = [w for w in _WORD_RE.findall(text.lower()) if w not in stop]
    terms: dict[str, str] = {}
    for word, stem in zip(words, _stemmer(lang).stemWords(words)):
        terms.setdefault(_fold(stem), word)
    return terms


class LexicalIndex:
    """BM25 over documents with integer ids, each in one language; add and remove one at a time.

    A query is stemmed in each language and matched against the documents of that language, so a
    Spanish query finds Spanish articles by their stems and English ones by the words both share
    (names, products, numbers).
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.docs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # doc id -> (term ids, counts)
        self.total_length = 0
        self.df: dict[int, int] = {}
        self._lengths = np.zeros(0, dtype=np.float32)
        self._lang_codes = np.zeros(0, dtype=np.int8)  # index in LANGUAGES + 1; 0 = no document
        self._postings: dict[int, tuple[np.ndarray, np.ndarray]] | None = None  # term -> (doc ids, counts)
        self._added: dict[int, list[tuple[int, float]]] = {}  # changes since the postings were built
        self._removed: dict[int, set[int]] = {}

    @property
    def count(self) -> int:
        """How many documents are indexed."""
        return len(self.docs)

    def language_of(self, doc_id: int) -> str:
        """The language a document was indexed in."""
        return LANGUAGES[int(self._lang_codes[doc_id]) - 1]

    def _grow(self, doc_id: int) -> None:
        if doc_id >= len(self._lengths):
            size = max(doc_id + 1, 2 * len(self._lengths), 64)
            self._lengths = np.concatenate([self._lengths, np.zeros(size - len(self._lengths), np.float32)])
            self._lang_codes = np.concatenate([self._lang_codes,
                                               np.zeros(size - len(self._lang_codes), np.int8)])

    def add(self, doc_id: int, text: str, lang: str) -> None:
        """Index one document (its id must not be in the index)."""
        if doc_id in self.docs:
            raise ValueError(f"document {doc_id} is already indexed")
        tokens = tokenize(text, lang)
        counts: dict[int, int] = {}
        for token in tokens:
            term = self.vocab.get(token)
            if term is None:
                term = self.vocab[token] = len(self.terms)
                self.terms.append(token)
            counts[term] = counts.get(term, 0) + 1
        self._store(doc_id, lang, np.fromiter(counts.keys(), np.int32, len(counts)),
                    np.fromiter(counts.values(), np.float32, len(counts)), len(tokens))

    def _store(self, doc_id: int, lang: str, term_ids: np.ndarray, counts: np.ndarray, length: int) -> None:
        self.docs[doc_id] = (term_ids, counts)
        self._grow(doc_id)
        self._lengths[doc_id] = length
        self._lang_codes[doc_id] = LANGUAGES.index(lang) + 1
        self.total_length += length
        for term, count in zip(term_ids.tolist(), counts.tolist()):
            self.df[term] = self.df.get(term, 0) + 1
            if self._postings is not None:
                self._added.setdefault(term, []).append((doc_id, count))

    def remove(self, doc_id: int) -> bool:
        """Take a document out; returns False if it was not there."""
        entry = self.docs.pop(doc_id, None)
        if entry is None:
            return False
        self.total_length -= int(self._lengths[doc_id])
        self._lengths[doc_id] = 0
        self._lang_codes[doc_id] = 0
        for term in entry[0].tolist():
            self.df[term] -= 1
            if self._postings is not None:
                self._removed.setdefault(term, set()).add(doc_id)
        return True

    def _refresh_postings(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The postings, built in one pass the first time, then patched with the terms that changed."""
        if self._postings is None:
            self._postings = self._all_postings()
            self._added, self._removed = {}, {}
            release_free_memory()  # the sort's working arrays
        for term in set(self._added) | set(self._removed):
            docs, tfs = self._postings.get(term, (np.zeros(0, np.int64), np.zeros(0, np.float32)))
            removed = self._removed.get(term)
            if removed:
                keep = ~np.isin(docs, np.fromiter(removed, np.int64, len(removed)))
                docs, tfs = docs[keep], tfs[keep]
            added = self._added.get(term)
            if added:
                docs = np.concatenate([docs, np.array([d for d, _ in added], np.int64)])
                tfs = np.concatenate([tfs, np.array([c for _, c in added], np.float32)])
            if len(docs):
                self._postings[term] = (docs, tfs)
            else:
                self._postings.pop(term, None)
        self._added, self._removed = {}, {}
        return self._postings

    def _all_postings(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Every term's (doc ids, counts), in one sort of all the documents' terms. Doc ids are kept in 32
        bits and each array is sorted once in place of a copy: at 100k chunks (4M postings) building them
        was the largest step up of a server's memory."""
        if not self.docs:
            return {}
        sizes = np.fromiter((len(t) for t, _ in self.docs.values()), np.int64, len(self.docs))
        id_type = np.int32 if len(self._lengths) < 2**31 else np.int64
        term_ids = np.concatenate([t for t, _ in self.docs.values()])
        order = np.argsort(term_ids, kind="stable")
        per_term = np.bincount(term_ids, minlength=len(self.terms))
        del term_ids
        doc_ids = np.repeat(np.fromiter(self.docs.keys(), id_type, len(self.docs)), sizes)[order]
        counts = np.concatenate([c for _, c in self.docs.values()])[order]
        del order
        ends = np.cumsum(per_term)
        return {term: (doc_ids[end - size:end], counts[end - size:end])
                for term, (size, end) in enumerate(zip(per_term.tolist(), ends.tolist())) if size}

    def scores(self, query: str, query_terms_by_lang: dict[str, dict[str, str]] | None = None) -> np.ndarray:
        """BM25 score of every document id (0 for documents that share no term with the query)."""
        postings = self._refresh_postings()
        total = np.zeros(len(self._lengths), dtype=np.float32)
        n = len(self.docs)
        if n == 0:
            return total
        average = self.total_length / n or 1.0
        by_lang = query_terms_by_lang or {lang: query_terms(query, lang) for lang in LANGUAGES}
        for code, lang in enumerate(LANGUAGES, 1):
            for token in by_lang.get(lang, {}):
                term = self.vocab.get(token)
                if term is None or term not in postings:
                    continue
                docs, tfs = postings[term]
                docs_of_lang = self._lang_codes[docs] == code
                if not docs_of_lang.any():
                    continue
                docs, tfs = docs[docs_of_lang], tfs[docs_of_lang]
                df = self.df[term]
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                norm = K1 * (1 - B + B * self._lengths[docs] / average)
                total[docs] += idf * tfs / (tfs + norm)
        return total

    def ceiling(self, query: str, lang: str) -> float:
        """The most a document in ``lang`` could score for this query: the sum of its terms' idf (each term
        adds less than its idf). A word the index has never seen counts with the highest idf, so a query
        of unknown words has a high ceiling and every real score is a small share of it."""
        n = len(self.docs)
        total = 0.0
        for token in query_terms(query, lang):
            term = self.vocab.get(token)
            df = self.df.get(term, 0) if term is not None else 0
            total += math.log(1 + (n - df + 0.5) / (df + 0.5))
        return total

    def top(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(doc ids, scores) of the n best documents with a score above 0, best first."""
        scores = self.scores(query)
        matching = np.flatnonzero(scores > 0)
        if len(matching) > n:
            matching = matching[np.argpartition(-scores[matching], n - 1)[:n]]
        order = matching[np.argsort(-scores[matching], kind="stable")]
        return order, scores[order]

    def matched_words(self, doc_id: int, query: str) -> list[str]:
        """The query's words (as typed) whose stems the document contains."""
        entry = self.docs.get(doc_id)
        if entry is None:
            return []
        present = {self.terms[t] for t in entry[0].tolist()}
        return list(dict.fromkeys(word for stem, word in query_terms(query, self.language_of(doc_id)).items()
                                  if stem in present))

    # ----- persistence -------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as flat arrays (plus the vocabulary as JSON text), for saving beside the vectors."""
        import json

        ids = np.fromiter(self.docs.keys(), np.int64, len(self.docs))
        term_ids = [self.docs[d][0] for d in ids.tolist()]
        return {
            "lex_doc_ids": ids,
            "lex_doc_lang": (self._lang_codes[ids] - 1).astype(np.int8),
            "lex_doc_length": self._lengths[ids].astype(np.int64) if len(ids) else np.zeros(0, np.int64),
            "lex_doc_terms": np.array([len(t) for t in term_ids], np.int64),
            "lex_term_ids": np.concatenate(term_ids) if term_ids else np.zeros(0, np.int32),
            "lex_counts": (np.concatenate([self.docs[d][1] for d in ids.tolist()]) if len(ids)
                           else np.zeros(0, np.float32)),
            "lex_vocab": np.frombuffer(json.dumps(self.terms).encode("utf-8"), dtype=np.uint8),
        }

    @classmethod
    def from_arrays(cls, data) -> "LexicalIndex":
        """Rebuild an index from ``to_arrays`` output."""
        import json

        index = cls()
        index.terms = json.loads(bytes(data["lex_vocab"]).decode("utf-8"))
        index.vocab = {term: i for i, term in enumerate(index.terms)}
        offsets = np.concatenate([[0], np.cumsum(data["lex_doc_terms"])])
        term_ids, counts = data["lex_term_ids"], data["lex_counts"]
        for row, doc_id in enumerate(data["lex_doc_ids"].tolist()):
            span = slice(offsets[row], offsets[row + 1])
            index._store(doc_id, LANGUAGES[int(data["lex_doc_lang"][row])], term_ids[span], counts[span],
                         int(data["lex_doc_length"][row]))
        return index
