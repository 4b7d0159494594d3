"""The knowledge index: article chunks, their vectors, their keywords, searched together.

This is the one interface the portal uses:

    index = KnowledgeIndex.create(get_ranking("hybrid"), embedders)   # embedders: {backend: Embedder}
    index.build(articles)                   # embeds every article
    index.load_prepared(prepared)           # or: articles whose vectors were made before (stored rows)
    index.upsert(index.prepare(article))    # one article added or replaced; index.remove(slug)
    hits = index.search("my laptop disk is full", k=5)
    index.save(path); KnowledgeIndex.load(path, embedders)   # a snapshot file (indexer/snapshot.py)

Preparing (chunking and embedding, ``indexer/prepared.py``) is apart from indexing, so a caller can embed
before it takes a lock and a process can fill an index from stored vectors without running a model.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .articles import Article
from .chunking import DEFAULT_MAX_CHARS, Chunk, chunk_article
from .confidence import Calibration, load_calibration, result_features
from .embedders import Embedder
from .language import detect_language
from .lexical import LexicalIndex
from .memory import release_free_memory
from .prepared import ENCODE_BATCH, PreparedArticle, embedding_units, prepare_article
from .problems import IndexMismatchError, IndexMissingError, IndexProblem  # noqa: F401 (re-exported)
from .ranking import ALIGNMENT, CANDIDATES, LEXICAL, Proposal, Ranking, align_languages, fuse, get_ranking
from .snapshot import FORMAT_VERSION, read_snapshot, read_snapshot_info, write_snapshot
from .snippets import make_snippet
from .store import VectorStore

CONCURRENT_LEXICAL_MIN = 5000  # articles from which BM25 runs in a side thread while FAISS searches


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


def _batches(field_unit: str, entries, size: int):
    """(vector ids, texts) in batches of ``size`` for a build, over (title, chunks, entry) triples whose
    vector ids for this field were just assigned (the entry's last ones)."""
    ids, texts = [], []
    for title, chunks, entry in entries:
        unit_texts = embedding_units(field_unit, title, chunks)[0]
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
        self._reset()
        entries = []  # (title, chunks, entry): the articles themselves are let go (a caller may stream them)
        for article in articles:
            chunks = chunk_article(article, self.max_chars)
            entries.append((article.title, chunks, self._register(article, chunks)))
        self.stores = {}
        for dense in self.ranking.dense:
            counts = []
            for title, chunks, entry in entries:
                ordinals = embedding_units(dense.unit, title, chunks)[1]
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

    def load_prepared(self, prepared: Iterable[PreparedArticle], expected: dict[str, int] | None = None) -> None:
        """Fill the index with articles whose vectors were made before (rows a database stores), replacing
        whatever it held; no model runs. ``expected``: how many vectors of each backend are coming, so a
        large store is quantised once, when it is full (as ``build`` does)."""
        started = time.perf_counter()
        self._reset()
        self.stores = {dense.backend: VectorStore(self._dim(dense.backend), (expected or {}).get(dense.backend, 0))
                       for dense in self.ranking.dense}
        for item in prepared:
            self._check(item)
            entry = self._register(item.article, item.chunks)
            for dense in self.ranking.dense:
                ids = self._assign_vectors(entry, item.owners[dense.backend].tolist())
                self.stores[dense.backend].add(ids, item.vectors[dense.backend])
        for store in self.stores.values():
            store.flush()
            store.optimise()
        release_free_memory()
        self.meta["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.meta["build_seconds"] = round(time.perf_counter() - started, 3)

    def prepare(self, article: Article) -> PreparedArticle:
        """An article's chunks and vectors for this index (slow: runs the models)."""
        return prepare_article(article, self.ranking, self.embedders, self.max_chars)

    def upsert(self, article: Article | PreparedArticle) -> bool:
        """Add or replace one article without a rebuild; returns False when it was already current.

        Given a ``PreparedArticle`` (``prepare``), no model runs: a caller embeds before taking a lock.
        A failing model or malformed vectors leave the previous version in place.
        """
        document = article.article if isinstance(article, PreparedArticle) else article
        if self.holds(document):
            return False
        prepared = article if isinstance(article, PreparedArticle) else self.prepare(document)
        self._check(prepared)
        self._drop(document.slug)
        entry = self._register(document, prepared.chunks)
        for dense in self.ranking.dense:
            store = self.stores[dense.backend]
            store.add(self._assign_vectors(entry, prepared.owners[dense.backend].tolist()),
                      prepared.vectors[dense.backend])
            store.optimise()
        return True

    def _check(self, prepared: PreparedArticle) -> None:
        """Refuse vectors that do not fit this index's models or the article's chunks."""
        for dense in self.ranking.dense:
            vectors, owners = prepared.vectors.get(dense.backend), prepared.owners.get(dense.backend)
            if (vectors is None or owners is None or vectors.ndim != 2 or len(vectors) != len(owners)
                    or vectors.shape[1] != self._dim(dense.backend)
                    or (len(owners) and not 0 <= int(owners.min()) <= int(owners.max()) < len(prepared.chunks))):
                raise ValueError(f"{prepared.slug}: its {dense.backend} vectors do not fit this index")

    def _dim(self, backend: str) -> int:
        return int(self.meta["fields"][backend]["dim"])

    def remove(self, slug: str) -> bool:
        """Take an article out of the index; returns False if it was not there."""
        return self._drop(slug)

    def _reset(self) -> None:
        self.lexical = LexicalIndex() if self.ranking.lexical else None
        self.articles, self.chunks, self._by_doc, self._topics, self.next_id = {}, {}, {}, {}, 1
        self.owners, self._vector_docs = np.zeros(0, np.int64), np.zeros(0, np.int64)

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
        langs = {slug: self.articles[slug].lang for p in proposals.values() for slug in p.found}
        contributions = fuse(self.ranking, qlang, proposals, langs)
        fused = {slug: sum(parts.values()) for slug, parts in contributions.items()}
        topic_of = {slug: self.articles[slug].topic for slug in fused}
        shifts = align_languages(fused, langs, topic_of, qlang) if self.ranking.align else {}
        for slug, shift in shifts.items():
            contributions[slug][ALIGNMENT] = shift  # shown in "why it matched" beside the retrievers
            fused[slug] += shift
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
        """Write the whole index to one file, atomically (a reader sees the old file or the new one)."""
        write_snapshot(self, path)

    @staticmethod
    def read_info(path: Path) -> dict:
        """The saved metadata of an index file, without loading the vectors."""
        return read_snapshot_info(path)

    @classmethod
    def load(cls, path: Path, embedders: dict[str, Embedder]) -> "KnowledgeIndex":
        """Load a saved index; refuse it if it was built with other models than ``embedders``."""
        return read_snapshot(path, embedders)


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
