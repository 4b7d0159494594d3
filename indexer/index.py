"""The knowledge index: article chunks, their vectors, their keywords and the metadata to trust a saved index.

This is the one interface the portal uses:

    index = KnowledgeIndex.create(get_ranking("hybrid"), embedders)   # embedders: {backend: Embedder}
    index.build(articles)            # or index.upsert(article) / index.remove(slug)
    hits = index.search("my laptop disk is full", k=5)
    index.save(path)                 # the whole index, in one file
    index.save_changes(path)         # after upserts and removals: appended to the file's journal
    index = KnowledgeIndex.load(path, embedders)   # refuses an index built with other models
    index.refresh(path)              # another process's changes since the load
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import re
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .articles import Article
from .chunking import DEFAULT_MAX_CHARS, Chunk, chunk_article, passages
from .confidence import Calibration, load_calibration, result_features
from .embedders import Embedder
from .journal import START, Frame, append_frames, journal_path, read_frames
from .language import detect_language
from .lexical import LexicalIndex
from .memory import release_free_memory
from .ranking import (CANDIDATES, FALLBACK_RANKING, LEXICAL, Proposal, Ranking, fuse, get_ranking,
                      unavailable_reason)
from .store import VectorStore

FORMAT_VERSION = 4  # 4: the confidence calibration is part of the metadata
ENCODE_BATCH = 512  # texts per call: the model sorts a call by length, so less padding
COMPACT_SHARE = 10  # save_changes compacts once the journal outgrows 1/10 of the base file ...
COMPACT_MIN_BYTES = 1 << 20  # ... and 1 MB
CONCURRENT_LEXICAL_MIN = 5000  # articles from which BM25 runs in a side thread while FAISS searches


class IndexProblem(Exception):
    """Base class for index problems the caller should show to a person."""


class IndexMismatchError(IndexProblem):
    """The saved index was built with another ranking or embedding model than the one configured."""


class IndexMissingError(IndexProblem):
    """No index file at the expected place, or it cannot be read."""


class IndexConflictError(IndexProblem):
    """The saved index changed since this one was loaded: refresh or load it before saving changes."""


@dataclass(slots=True)  # one per article: slots keep 40k of them small
class ArticleEntry:
    """What the index keeps of an article: enough to filter and show results without the database."""

    slug: str
    title: str
    lang: str
    category: str
    visibility: str
    tags: list[str]
    content_hash: str
    doc_id: int = 0
    topic: str = ""
    chunk_ids: list[int] = field(default_factory=list)
    vector_ids: list[int] = field(default_factory=list)


@dataclass
class SearchHit:
    """One article in the results, with the section that matched best and why it matched.

    ``score`` is the fused score (a weighted sum of standardised retriever scores; higher is better,
    comparable within one query). ``confidence`` is the estimated probability that the article answers
    the query (None when the index has no calibration for its models). ``semantic`` is the best cosine
    similarity of the first dense model (None when it did not propose the article), ``keywords`` the
    query's words the article contains; ``translations`` the other language versions of its topic (a
    topic is listed once).
    """

    slug: str
    title: str
    lang: str
    category: str
    visibility: str
    heading: str
    snippet: str
    score: float
    semantic: float | None = None
    keywords: list[str] = field(default_factory=list)
    retrievers: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None
    translations: list[dict] = field(default_factory=list)  # the topic's other versions: slug, lang, title


def make_snippet(text: str, query: str, max_chars: int = 240) -> str:
    """The window of a chunk's text that shares most words with the query, cut at word boundaries."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    terms = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    sentences = re.split(r"(?<=[.!?])\s+", text)
    best, best_score = 0, -1
    for i, sentence in enumerate(sentences):
        score = len(terms & set(re.findall(r"\w+", sentence.lower())))
        if score > best_score:
            best, best_score = i, score
    snippet = ""
    for sentence in sentences[best:]:
        if len(snippet) + len(sentence) + 1 > max_chars:
            break
        snippet = f"{snippet} {sentence}".strip()
    if not snippet:
        cut = sentences[best][:max_chars].rsplit(" ", 1)[0]
        snippet = cut
    prefix = "… " if best > 0 else ""
    suffix = " …" if len(snippet) < len(" ".join(sentences[best:])) else ""
    return f"{prefix}{snippet}{suffix}"


def _embedding_units(field_unit: str, title: str, chunks: list[Chunk]) -> tuple[list[str], list[int]]:
    """The texts a dense retriever embeds for an article's chunks, and the chunk ordinal of each."""
    texts, owners = [], []
    for ordinal, chunk in enumerate(chunks):
        pieces = passages(chunk, title) if field_unit == "passage" else [chunk.embedding_text(title)]
        texts.extend(pieces)
        owners.extend([ordinal] * len(pieces))
    return texts, owners


def _batches(field_unit: str, entries, size: int):
    """(vector ids, texts) in batches of ``size`` for a build, over (title, chunks, entry) triples whose
    vector ids for this field were just assigned (the entry's last ones)."""
    ids, texts = [], []
    for title, chunks, entry in entries:
        unit_texts = _embedding_units(field_unit, title, chunks)[0]
        ids.extend(entry.vector_ids[len(entry.vector_ids) - len(unit_texts):])
        texts.extend(unit_texts)
        while len(texts) >= size:
            yield np.asarray(ids[:size], np.int64), texts[:size]
            ids, texts = ids[size:], texts[size:]
    if texts:
        yield np.asarray(ids, np.int64), texts


class KnowledgeIndex:
    """Published articles, searchable by meaning and by keywords, updatable one article at a time."""

    def __init__(self, ranking: Ranking, embedders: dict[str, Embedder], meta: dict,
                 articles: dict[str, ArticleEntry], chunks: dict[int, Chunk], next_id: int,
                 stores: dict[str, VectorStore], owners: np.ndarray, lexical: LexicalIndex | None):
        self.ranking = ranking
        self.embedders = embedders
        self.meta = meta
        self.articles = articles
        self.chunks = chunks
        self.next_id = next_id
        self.stores = stores
        self.owners = owners  # vector id -> chunk id
        self.lexical = lexical
        self._by_doc = {entry.doc_id: entry for entry in articles.values()}
        self._topics: dict[str, set[str]] = {}  # topic -> slugs of its versions
        for entry in articles.values():
            self._add_topic(entry)
        self._vector_docs = np.full(len(owners), -1, np.int64)  # vector id -> article doc id
        for entry in articles.values():
            self._vector_docs[entry.vector_ids] = entry.doc_id
        self.generation: str | None = None  # of the base file this index was loaded from or saved to
        self.journal_end = 0  # how far its journal has been applied (0: nothing applied)
        self._pending: list[Frame] = []  # changes not saved yet
        confidence = meta.get("confidence")
        self.calibration = Calibration.from_dict(confidence) if confidence else None

    # ----- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, ranking: Ranking | str, embedders: dict[str, Embedder],
               max_chars: int = DEFAULT_MAX_CHARS) -> "KnowledgeIndex":
        """An empty index for this ranking; ``embedders`` holds one embedder per dense backend it uses."""
        ranking = get_ranking(ranking) if isinstance(ranking, str) else ranking
        missing = [f.backend for f in ranking.dense if f.backend not in embedders]
        if missing:
            raise ValueError(f"ranking {ranking.name!r} needs an embedder for {', '.join(missing)}")
        meta = {
            "format": FORMAT_VERSION,
            "ranking": ranking.name,
            "fields": {f.backend: {"model": embedders[f.backend].model, "dim": embedders[f.backend].dim,
                                   "unit": f.unit} for f in ranking.dense},
            "max_chars": max_chars,
            "built_at": None,
            "build_seconds": None,
        }
        stores = {f.backend: VectorStore(embedders[f.backend].dim) for f in ranking.dense}
        index = cls(ranking, embedders, meta, {}, {}, 1, stores, np.zeros(0, np.int64),
                    LexicalIndex() if ranking.lexical else None)
        index.set_calibration(load_calibration(ranking.name, index.signature()))
        return index

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Use this confidence calibration (saved with the index's metadata); None: results get no confidence."""
        self.calibration = calibration
        self.meta["confidence"] = calibration.to_dict() if calibration is not None else None

    @property
    def max_chars(self) -> int:
        return int(self.meta["max_chars"])

    def signature(self) -> str:
        """The ranking and the models: two indexes with equal signatures hold comparable vectors."""
        return ranking_signature(self.ranking.name, {b: f["model"] for b, f in self.meta["fields"].items()})

    def build(self, articles: Iterable[Article], progress: bool = False,
              vector_sink: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
              release_models: bool = False) -> None:
        """Index all these articles, replacing whatever the index held.

        Vectors are embedded batch by batch and go straight into their store, so a large knowledge base
        never sits in memory twice (a store above the approximate size is quantised as it fills).
        ``vector_sink(backend, ids, vectors)`` sees every batch (benchmarks keep the exact vectors).
        ``release_models``: let go of each model once its vectors are made, so the next one has its memory
        (for a process that only builds; a later search loads the models again).
        """
        started = time.perf_counter()
        self._pending = []
        self.lexical = LexicalIndex() if self.ranking.lexical else None
        self.articles, self.chunks, self._by_doc, self._topics, self.next_id = {}, {}, {}, {}, 1
        self.owners, self._vector_docs = np.zeros(0, np.int64), np.zeros(0, np.int64)
        entries = []  # (title, chunks, entry): the articles themselves are let go (a caller may stream them)
        for article in articles:
            chunks = chunk_article(article, self.max_chars)
            entries.append((article.title, chunks, self._register(article, chunks)))
        self.stores = {}
        for dense in self.ranking.dense:
            counts = []
            for title, chunks, entry in entries:
                ordinals = _embedding_units(dense.unit, title, chunks)[1]
                counts.append(len(self._assign_vectors(entry, ordinals)))
            embedder = self.embedders[dense.backend]
            store = VectorStore(embedder.dim, expected=sum(counts))
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=sum(counts), desc=f"Embedding {dense.unit}s ({dense.backend})", unit=dense.unit)
            for ids, texts in _batches(dense.unit, entries, ENCODE_BATCH):  # texts made as they are needed
                vectors = embedder.encode_documents(texts)
                release_free_memory()
                store.add(ids, vectors)
                if vector_sink is not None:
                    vector_sink(dense.backend, ids, vectors)
                if bar is not None:
                    bar.update(len(ids))
            if bar is not None:
                bar.close()
            if release_models:
                embedder.release()
                gc.collect()  # a torch model's modules refer to each other
            store.flush()
            release_free_memory()
            self.stores[dense.backend] = store
        self.meta["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.meta["build_seconds"] = round(time.perf_counter() - started, 3)

    def _new_ids(self, count: int) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.next_id += count
        return ids

    def _register(self, article: Article, chunks: list[Chunk]) -> ArticleEntry:
        """Give an article and its chunks their ids and put its words in the keyword index."""
        entry = ArticleEntry(article.slug, article.title, article.lang, article.category,
                             article.visibility, list(article.tags), article.content_hash(),
                             int(self._new_ids(1)[0]), article.topic)
        entry.chunk_ids = self._new_ids(len(chunks)).tolist()
        for chunk_id, chunk in zip(entry.chunk_ids, chunks):
            self.chunks[chunk_id] = chunk
        if self.lexical is not None:
            self.lexical.add(entry.doc_id, lexical_text(article), article.lang)
        self.articles[article.slug] = entry
        self._by_doc[entry.doc_id] = entry
        self._add_topic(entry)
        return entry

    def _add_topic(self, entry: ArticleEntry) -> None:
        if entry.topic:
            self._topics.setdefault(entry.topic, set()).add(entry.slug)

    def _assign_vectors(self, entry: ArticleEntry, ordinals: list[int]) -> np.ndarray:
        """Ids for an article's vectors (one per embedded unit), each pointing at its chunk."""
        ids = self._new_ids(len(ordinals))
        if len(ids):
            if ids[-1] >= len(self.owners):
                size = max(int(ids[-1]) + 1, 2 * len(self.owners))
                self.owners = np.concatenate([self.owners, np.full(size - len(self.owners), -1, np.int64)])
                self._vector_docs = np.concatenate([self._vector_docs,
                                                    np.full(size - len(self._vector_docs), -1, np.int64)])
            self.owners[ids] = np.asarray(entry.chunk_ids, np.int64)[np.asarray(ordinals, np.int64)]
            self._vector_docs[ids] = entry.doc_id
        entry.vector_ids.extend(ids.tolist())
        return ids

    def holds(self, article: Article) -> bool:
        """Whether the index has this article in exactly this version."""
        current = self.articles.get(article.slug)
        return current is not None and current.content_hash == article.content_hash()

    def embed(self, article: Article) -> dict[str, np.ndarray]:
        """An article's vectors for each dense retriever (what ``upsert`` needs; slow: runs the models)."""
        chunks = chunk_article(article, self.max_chars)
        return {dense.backend: self.embedders[dense.backend].encode_documents(
                    _embedding_units(dense.unit, article.title, chunks)[0])
                for dense in self.ranking.dense}

    def upsert(self, article: Article, vectors: dict[str, np.ndarray] | None = None) -> bool:
        """Add or replace one article without a rebuild; returns False when it was already current.

        ``vectors`` (from ``embed``) lets a caller run the models before taking a lock. The change is
        kept for ``save_changes``.
        """
        if self.holds(article):
            return False
        vectors = self.embed(article) if vectors is None else vectors  # before any change: a failing model
        self._apply_upsert(article, vectors)                          # leaves the previous version intact
        order = [dense.backend for dense in self.ranking.dense]
        self._pending.append(Frame(
            {"op": "upsert", "article": asdict(article), "vectors": {b: len(vectors[b]) for b in order}},
            b"".join(np.ascontiguousarray(vectors[b], np.float32).tobytes() for b in order)))
        return True

    def _apply_upsert(self, article: Article, vectors: dict[str, np.ndarray]) -> None:
        chunks = chunk_article(article, self.max_chars)
        units = {}
        for dense in self.ranking.dense:
            ordinals = _embedding_units(dense.unit, article.title, chunks)[1]
            given = vectors.get(dense.backend)
            if given is None or len(given) != len(ordinals):
                raise ValueError(f"{article.slug}: expected {len(ordinals)} {dense.backend} vectors")
            units[dense.backend] = ordinals
        self._drop(article.slug)
        entry = self._register(article, chunks)
        for backend, ordinals in units.items():
            self.stores[backend].add(self._assign_vectors(entry, ordinals), vectors[backend])
            self.stores[backend].optimise()

    def remove(self, slug: str) -> bool:
        """Take an article out of the index; returns False if it was not there. Kept for ``save_changes``."""
        if not self._drop(slug):
            return False
        self._pending.append(Frame({"op": "remove", "slug": slug}, b""))
        return True

    def _drop(self, slug: str) -> bool:
        entry = self.articles.pop(slug, None)
        if entry is None:
            return False
        self._by_doc.pop(entry.doc_id, None)
        if entry.topic:
            self._topics.get(entry.topic, set()).discard(entry.slug)
        for store in self.stores.values():
            store.remove(entry.vector_ids)
        self.owners[entry.vector_ids] = -1
        self._vector_docs[entry.vector_ids] = -1
        if self.lexical is not None:
            self.lexical.remove(entry.doc_id)
        for chunk_id in entry.chunk_ids:
            self.chunks.pop(chunk_id, None)
        return True

    def _replay(self, frame: Frame) -> None:
        """Apply a change read from the journal."""
        header = frame.header
        if header["op"] == "remove":
            self._drop(header["slug"])
            return
        vectors, offset = {}, 0
        for backend, rows in header["vectors"].items():
            dim = int(self.meta["fields"][backend]["dim"])
            vectors[backend] = np.frombuffer(frame.body, np.float32, rows * dim, offset).reshape(rows, dim)
            offset += rows * dim * 4
        self._apply_upsert(Article(**header["article"]), vectors)

    # ----- search -------------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, lang: str | None = None,
               allow: Callable[[ArticleEntry], bool] | None = None,
               query_lang: str | None = None, timings: dict | None = None,
               features: list | None = None, prefer_lang: str | None = None) -> list[SearchHit]:
        """The k best articles for a query, each with its best-matching section, why it matched and how
        confident the index is that it answers the query.

        ``lang`` keeps only articles in that language; ``allow`` filters articles (e.g. internal ones
        for a customer). ``query_lang`` is the language to assume when the query itself does not tell
        (a single word); by default it is detected, English when in doubt. ``timings``, if given,
        receives the milliseconds spent embedding the query, searching and fusing (benchmarks);
        ``features``, if given, receives each hit's (language pair, confidence features) (fitting).
        A topic in several languages is listed once, as its version in ``prefer_lang`` (the reader's) when
        there is one, else as its best-ranked version, with the others as ``translations``.
        """
        if not self.articles or k <= 0:
            return []
        started = time.perf_counter()
        timings = {} if timings is None else timings
        timings.update(embed_ms=0.0, search_ms=0.0, fuse_ms=0.0)
        qlang = detect_language(query, query_lang or "en")
        proposals = self.propose(query, self.ranking.needed(qlang), max(CANDIDATES, k), lang, allow, timings)
        fusing = time.perf_counter()
        timings["search_ms"] = (fusing - started) * 1000 - timings["embed_ms"]
        contributions = fuse(self.ranking, qlang, proposals,
                             {slug: self.articles[slug].lang for p in proposals.values() for slug in p.found})
        fused = {slug: sum(parts.values()) for slug, parts in contributions.items()}
        ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        topics = self._one_per_topic([slug for slug, _ in ordered[:3 * k + 1]], prefer_lang, _keeper(lang, allow))
        ranked = [ordered[position] for position, _, _ in topics[:k + 1]]  # one more: the last one's margin
        rows = self.confidence_features(query, qlang, ranked, proposals)
        confidences = self._confidences(rows)
        hits = []
        for i, (_, shown, others) in enumerate(topics[:k]):
            slug, score = ranked[i]
            if features is not None:
                features.append(rows[i])
            hit = self._hit(shown, score, query, proposals, contributions[slug], confidences[i])
            hit.translations = [{"slug": o, "lang": self.articles[o].lang, "title": self.articles[o].title}
                                for o in others]
            hits.append(hit)
        timings["fuse_ms"] = (time.perf_counter() - fusing) * 1000
        return hits

    def _one_per_topic(self, slugs: list[str], prefer_lang: str | None,
                       keep: Callable[[ArticleEntry], bool]) -> list[tuple[int, str, list[str]]]:
        """(position of the topic's best-ranked version, the version to show, its other versions) for each
        topic in rank order; an article without a topic is its own. Only versions ``keep`` allows count. The
        topic keeps the rank, score and confidence of its best version: the versions say the same."""
        seen: set[str] = set()
        result = []
        for position, slug in enumerate(slugs):
            topic = self.articles[slug].topic
            if not topic:
                result.append((position, slug, []))
                continue
            if topic in seen:
                continue
            seen.add(topic)
            versions = [slug] + sorted(s for s in self._topics.get(topic, ()) if s != slug and keep(self.articles[s]))
            preferred = next((s for s in versions if self.articles[s].lang == prefer_lang), slug)
            result.append((position, preferred, [s for s in versions if s != preferred]))
        return result

    def confidence_features(self, query: str, qlang: str, ranked: list[tuple[str, float]],
                            proposals: dict[str, Proposal]) -> list[tuple[str, dict[str, float]]]:
        """(language pair, confidence features) of each ranked article (see ``confidence``)."""
        pairs = {slug: f"{qlang}>{self.articles[slug].lang}" for slug, _ in ranked}
        counting = {slug: [name for name in proposals
                           if self.ranking.weight(qlang, self.articles[slug].lang, name) > 0] for slug, _ in ranked}
        ceilings: dict[str, float] = {}
        if self.lexical is not None:
            by_lang = {lang: self.lexical.ceiling(query, lang) for lang in {self.articles[s].lang for s, _ in ranked}}
            ceilings = {slug: by_lang[self.articles[slug].lang] for slug, _ in ranked}
        rows = result_features(ranked, proposals, counting, ceilings, len(re.findall(r"\w+", query)),
                               lambda slug: self.articles[slug].topic)
        return [(pairs[slug], row) for (slug, _), row in zip(ranked, rows)]

    def _confidences(self, rows: list[tuple[str, dict[str, float]]]) -> list[float | None]:
        """Each row's confidence, one model call per language pair (None without a model for its pair)."""
        confidences: list[float | None] = [None] * len(rows)
        if self.calibration is None:
            return confidences
        by_pair: dict[str, list[int]] = {}
        for position, (pair, _) in enumerate(rows):
            by_pair.setdefault(pair, []).append(position)
        for pair, positions in by_pair.items():
            model = self.calibration.model_for(pair)
            if model is not None:
                for position, p in zip(positions, model.probability([rows[i][1] for i in positions]).tolist()):
                    confidences[position] = round(p, 4)
        return confidences

    def propose(self, query: str, retrievers: list[str], depth: int = CANDIDATES, lang: str | None = None,
                allow: Callable[[ArticleEntry], bool] | None = None,
                timings: dict | None = None) -> dict[str, Proposal]:
        """Each named retriever's best ``depth`` articles for the query (before fusion)."""
        timings = {} if timings is None else timings
        keep = _keeper(lang, allow)
        dense = [d.backend for d in self.ranking.dense if d.backend in retrievers]
        lexical = self.lexical is not None and LEXICAL in retrievers
        proposals: dict[str, Proposal] = {}
        beside: Future | None = None
        for backend in dense:
            if not self.stores[backend].count:
                proposals[backend] = Proposal({})
                continue
            vector = self._query_vector(backend, query, timings)
            if lexical and beside is None and self.lexical.count >= CONCURRENT_LEXICAL_MIN:
                # On a large index BM25 (mostly numpy) runs in a side thread while FAISS, which lets go of
                # the GIL, scans the first model's lists. It is joined before the next model runs: torch
                # leaves its threads spinning for a while after a call, and they would slow BM25 down.
                beside = _side_worker().submit(self._lexical_candidates, query, depth, keep)
            proposals[backend] = self._dense_candidates(backend, vector, depth, keep)
            if beside is not None and LEXICAL not in proposals:
                proposals[LEXICAL] = beside.result()
        if lexical and LEXICAL not in proposals:
            proposals[LEXICAL] = self._lexical_candidates(query, depth, keep)
        return {name: proposals[name] for name in [*dense, LEXICAL] if name in proposals}

    def _query_vector(self, backend: str, query: str, timings: dict) -> np.ndarray:
        embedding = time.perf_counter()
        vector = self.embedders[backend].encode_queries([query])
        timings["embed_ms"] = timings.get("embed_ms", 0.0) + (time.perf_counter() - embedding) * 1000
        return vector

    def _dense_candidates(self, backend: str, query_vector: np.ndarray, depth: int, keep) -> Proposal:
        store = self.stores[backend]
        per_article = max(1, store.count // max(1, len(self.articles)))
        fetch = min(store.count, depth * per_article)
        while True:
            scores, ids = store.search(query_vector, fetch)
            scores, ids = scores[0], ids[0]
            docs = np.where(ids >= 0, self._vector_docs[np.maximum(ids, 0)], -1)
            unique, first = np.unique(docs, return_index=True)  # each article's best vector ...
            best: dict[str, tuple[float, int]] = {}
            for position in np.sort(first[unique >= 0]).tolist():  # ... in score order
                entry = self._by_doc[int(docs[position])]
                if not keep(entry):
                    continue
                best[entry.slug] = (float(scores[position]), int(self.owners[ids[position]]))
                if len(best) >= depth:
                    break
            if len(best) >= depth or fetch >= store.count:
                return Proposal(best)
            fetch = min(store.count, fetch * 4)

    def _lexical_candidates(self, query: str, depth: int, keep) -> Proposal:
        fetch = depth * 4
        while True:
            doc_ids, scores = self.lexical.top(query, fetch)
            found: dict[str, tuple[float, int]] = {}
            for doc_id, score in zip(doc_ids.tolist(), scores.tolist()):
                entry = self._by_doc.get(doc_id)
                if entry is not None and keep(entry):
                    found[entry.slug] = (score, -1)
                    if len(found) >= depth:
                        break
            if len(found) >= depth or len(doc_ids) < fetch:
                return Proposal(found, pad_to=min(depth, len(self.articles)))
            fetch *= 8

    def _hit(self, slug: str, score: float, query: str, proposals: dict[str, Proposal],
             contributions: dict[str, float], confidence: float | None = None) -> SearchHit:
        entry = self.articles[slug]
        chunk_id, semantic = -1, None
        for dense in self.ranking.dense:  # the section the first dense model liked best
            found = proposals.get(dense.backend)
            if found is not None and slug in found.found:
                raw, chunk_id = found.found[slug]
                semantic = round(raw, 4)
                break
        keywords = self.lexical.matched_words(entry.doc_id, query) if self.lexical is not None else []
        if chunk_id < 0:  # only the keywords found it: the first section that has one of them
            lowered = [w.lower() for w in keywords]
            chunk_id = next((c for c in entry.chunk_ids
                             if any(w in self.chunks[c].text.lower() for w in lowered)), entry.chunk_ids[0])
        chunk = self.chunks[chunk_id]
        return SearchHit(slug, entry.title, entry.lang, entry.category, entry.visibility, chunk.heading,
                         make_snippet(chunk.text, query), round(score, 4), semantic, keywords,
                         {name: round(value, 4) for name, value in contributions.items()}, confidence)

    # ----- persistence --------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """Identifies the indexed content and models: equal fingerprints mean nothing to rebuild."""
        return content_fingerprint(((slug, entry.content_hash) for slug, entry in self.articles.items()),
                                   self.signature(), self.max_chars,
                                   self.calibration.stamp if self.calibration is not None else "")

    def info(self) -> dict:
        """Metadata plus counts, as saved beside the index."""
        return {**self.meta, "articles": len(self.articles), "chunks": len(self.chunks),
                "vectors": {backend: store.count for backend, store in self.stores.items()},
                "fingerprint": self.fingerprint()}

    def save(self, path: Path) -> None:
        """Write the whole index to one file, atomically (a reader sees the old file or the new one, never
        half), and start its journal afresh."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        generation = uuid.uuid4().hex
        state = {
            "next_id": self.next_id,
            "articles": [asdict(a) for a in self.articles.values()],
            "chunks": {str(i): asdict(c) for i, c in self.chunks.items()},
        }
        head = {"generation": generation, "meta": self.info()}
        arrays = {"owners": self.owners, "head": _json_array(head)}
        if self.lexical is not None:
            arrays.update(self.lexical.to_arrays())
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                _write_npz(handle, arrays, {"state": state},
                           {f"faiss_{i}": store for i, store in enumerate(self.stores.values())})
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        journal_path(path).unlink(missing_ok=True)  # written for the previous generation: ignored anyway
        self.generation, self.journal_end, self._pending = generation, 0, []

    def save_changes(self, path: Path, compact: bool = True) -> int:
        """Append the changes since the last save or load to the file's journal; returns how many.

        Fast whatever the size of the index (one article's text and vectors are written). Falls back to a
        full ``save`` when this index was never saved; with ``compact``, also once the journal has outgrown
        a tenth of the base file (``needs_compaction``; a caller may rather compact in the background).
        The caller must hold whatever lock serialises the writers of ``path`` and have applied their
        changes (``refresh``); otherwise ``IndexConflictError``.
        """
        path = Path(path)
        count = len(self._pending)
        if not count:
            return 0
        if self.generation is None:
            self.save(path)
            return count
        if _read_generation(path) != self.generation:
            raise IndexConflictError(f"The index {path} was rebuilt since it was loaded; load it again.")
        newer, valid_end = read_frames(journal_path(path), self.generation, self.journal_end or START)
        if newer:
            raise IndexConflictError(f"The index {path} has changes this process has not applied; refresh it.")
        self._pending[-1].header["meta"] = self.info()
        self.journal_end = append_frames(journal_path(path), self.generation, valid_end, self._pending)
        self._pending = []
        if compact and self.needs_compaction(path):
            self.save(path)
        return count

    def needs_compaction(self, path: Path) -> bool:
        """Whether the journal has grown enough that a full ``save`` should replace it (loads replay it)."""
        try:
            base = Path(path).stat().st_size
        except FileNotFoundError:
            return False
        return self.journal_end > max(COMPACT_MIN_BYTES, base // COMPACT_SHARE)

    def refresh(self, path: Path) -> bool:
        """Apply the changes other processes appended to the journal since this index was loaded.

        Returns False when the base file itself was replaced (rebuilt or compacted): load it again.
        """
        path = Path(path)
        if self.generation is None or _read_generation(path) != self.generation:
            return False
        self._apply_journal(path)
        return True

    def _apply_journal(self, path: Path) -> None:
        """Replay the journal's frames beyond those already applied."""
        frames, end = read_frames(journal_path(path), self.generation, self.journal_end or START)
        for frame in frames:
            self._replay(frame)
        if frames:
            self.journal_end = end

    @staticmethod
    def read_info(path: Path) -> dict:
        """The saved metadata of an index file and its journal, without loading the vectors."""
        path = Path(path)
        head = _read_head(path)
        frames = read_frames(journal_path(path), head["generation"])[0]
        changed = [frame.header["meta"] for frame in frames if "meta" in frame.header]
        return changed[-1] if changed else head["meta"]

    @classmethod
    def load(cls, path: Path, embedders: dict[str, Embedder]) -> "KnowledgeIndex":
        """Load a saved index; refuse it if it was built with other models than ``embedders``."""
        path = Path(path)
        head, state, data = _read_state(path)
        meta = head["meta"]
        ranking = get_ranking(meta["ranking"])
        unavailable = unavailable_reason(ranking)
        if unavailable:
            raise IndexMismatchError(
                f"The index {path} was built with the {ranking.name!r} ranking, which this machine cannot run "
                f"({unavailable}). Rebuild it with another ranking (MESA_RANKING={FALLBACK_RANKING}, "
                f"`flask index build`).")
        for backend, saved in meta["fields"].items():
            embedder = embedders.get(backend)
            if embedder is None or embedder.model != saved["model"] or embedder.dim != int(saved["dim"]):
                configured = (f"{embedder.backend} / {embedder.model} ({embedder.dim} dimensions)"
                              if embedder is not None else "no such model")
                raise IndexMismatchError(
                    f"The index {path} was built with {backend} / {saved['model']} ({saved['dim']} dimensions) "
                    f"for the ranking {ranking.name!r}, but the configuration has {configured}. Rebuild it "
                    f"(`flask index build` or `python -m indexer build`) instead of mixing two models' vectors.")
        stores = {backend: _read_store(path, data, f"faiss_{i}", int(meta["fields"][backend]["dim"]))
                  for i, backend in enumerate(meta["fields"])}
        articles = {a["slug"]: ArticleEntry(**a) for a in state["articles"]}
        chunks = {int(i): Chunk(**c) for i, c in state["chunks"].items()}
        expected = sum(len(a.vector_ids) for a in articles.values())
        if sum(store.count for store in stores.values()) != expected:
            raise IndexMissingError(f"The index {path} is inconsistent (vectors and articles differ); "
                                    f"rebuild it.")
        lexical = LexicalIndex.from_arrays(data) if ranking.lexical else None
        meta = {k: v for k, v in meta.items() if k not in ("articles", "chunks", "vectors", "fingerprint")}
        index = cls(ranking, {b: embedders[b] for b in meta["fields"]}, meta, articles, chunks,
                    int(state["next_id"]), stores, np.asarray(data["owners"], np.int64), lexical)
        index.generation = head["generation"]
        index._apply_journal(path)
        del head, state, data
        release_free_memory()  # what parsing the state left behind
        return index


_side: tuple[int, ThreadPoolExecutor] | None = None


def _side_worker() -> ThreadPoolExecutor:
    """One thread per process for the work a search runs beside its own (made again in a forked child,
    which inherits the executor but not its thread)."""
    global _side
    if _side is None or _side[0] != os.getpid():
        _side = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="mesa-search"))
    return _side[1]


def _keeper(lang: str | None, allow: Callable[[ArticleEntry], bool] | None) -> Callable[[ArticleEntry], bool]:
    """Whether an article may be a result: in ``lang`` (if given) and allowed (if a filter is given)."""
    return lambda entry: (lang is None or entry.lang == lang) and (allow is None or allow(entry))


def lexical_text(article: Article) -> str:
    """What BM25 indexes of an article: the title twice (it names the problem), the tags and the text."""
    from .chunking import markdown_to_text

    return f"{article.title}\n{article.title}\n{' '.join(article.tags)}\n{markdown_to_text(article.body)}"


def _write_npz(handle, arrays: dict[str, np.ndarray], documents: dict[str, object],
               stores: dict[str, VectorStore]) -> None:
    """What ``np.savez`` writes (``np.load`` reads it). JSON ``documents`` (as UTF-8 uint8 arrays) and FAISS
    stores are streamed into their members instead of first made whole in memory (at 100k chunks the
    state is 81 MB of JSON, a store 364 MB)."""
    from numpy.lib import format as npy

    def header(member, length: int) -> None:
        npy.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (length,)})

    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array(member, np.asanyarray(array), allow_pickle=False)
        for name, value in documents.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                header(member, sum(map(len, json.JSONEncoder().iterencode(value))))  # ASCII: 1 byte a char
                text = io.TextIOWrapper(member, encoding="ascii")
                json.dump(value, text)
                text.flush()
                text.detach()  # the member is closed by its own ``with``
        for name, store in stores.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                header(member, store.serialized_size())
                store.write(member)


def _read_store(path: Path, data, name: str, dim: int) -> VectorStore:
    """A FAISS store from its uint8 member of an open .npz, streamed (never whole in memory twice)."""
    from numpy.lib import format as npy

    try:
        with data.zip.open(f"{name}.npy") as member:
            version = npy.read_magic(member)
            length = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(member)[0][0]
            start = member.tell()
            store = VectorStore.read(member, dim)
            if member.tell() - start != length:
                raise ValueError("the FAISS index and its member differ in length")
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({name}: {exc}); rebuild it.") from None
    return store


def _json_array(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def _open(path: Path):
    if not path.exists():
        raise IndexMissingError(f"No index at {path}; build it with `flask index build` "
                                f"or `python -m indexer build`.")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({exc}); rebuild it.") from None


def _read_head(path: Path, data=None) -> dict:
    """The small part of an index file: its generation and metadata (read without the rest)."""
    if data is None:
        with _open(path) as data:
            return _read_head(path, data)
    try:
        head = json.loads(bytes(data["head"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        detail = "an old format" if isinstance(exc, KeyError) else f"an unreadable header ({exc})"
        raise IndexMissingError(f"The index {path} has {detail}; rebuild it.") from None
    if head.get("meta", {}).get("format") != FORMAT_VERSION:
        raise IndexMissingError(f"The index {path} has an old format; rebuild it.")
    return head


def _read_generation(path: Path) -> str | None:
    """The generation of the index file at ``path`` (None when there is no readable one)."""
    try:
        return _read_head(path)["generation"]
    except IndexMissingError:
        return None


def _read_state(path: Path):
    data = _open(path)
    head = _read_head(path, data)
    try:
        state = json.loads(bytes(data["state"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({exc}); rebuild it.") from None
    return head, state, data


def ranking_signature(ranking: str, models: dict[str, str]) -> str:
    """A ranking name and its models (backend -> model) as one string, for fingerprints."""
    return "|".join([ranking, *(f"{backend}={model}" for backend, model in sorted(models.items()))])


def content_fingerprint(slug_hashes: Iterable[tuple[str, str]], signature: str,
                        max_chars: int = DEFAULT_MAX_CHARS, calibration: str = "") -> str:
    """A hash of (slug, content hash) pairs, the ranking's models and its confidence calibration's stamp:
    what an index of that content holds."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}|{signature}|{max_chars}|{calibration}".encode())
    for slug, content_hash in sorted(slug_hashes):
        digest.update(f"\n{slug}:{content_hash}".encode())
    return digest.hexdigest()
