"""The knowledge index: article chunks, their vectors and the metadata to trust a saved index.

This is the one interface the portal uses:

    index = KnowledgeIndex.create(embedder)
    index.build(articles)            # or index.upsert(article) / index.remove(slug)
    hits = index.search("my laptop disk is full", k=5)
    index.save(path)
    index = KnowledgeIndex.load(path, embedder)   # refuses an index built with another model
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .articles import Article
from .chunking import DEFAULT_MAX_CHARS, Chunk, chunk_article
from .embedders import Embedder
from .store import VectorStore

FORMAT_VERSION = 1
ENCODE_BATCH = 64


class IndexProblem(Exception):
    """Base class for index problems the caller should show to a person."""


class IndexMismatchError(IndexProblem):
    """The saved index was built with another embedding model than the one configured."""


class IndexMissingError(IndexProblem):
    """No index file at the expected place, or it cannot be read."""


@dataclass
class ArticleEntry:
    """What the index keeps of an article: enough to filter and show results without the database."""

    slug: str
    title: str
    lang: str
    category: str
    visibility: str
    tags: list[str]
    content_hash: str
    chunk_ids: list[int] = field(default_factory=list)


@dataclass
class ChunkEntry:
    """One indexed section."""

    slug: str
    ordinal: int
    heading: str
    text: str


@dataclass
class SearchHit:
    """One article in the results, with the section that matched best."""

    slug: str
    title: str
    lang: str
    category: str
    visibility: str
    heading: str
    snippet: str
    score: float


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


class KnowledgeIndex:
    """Chunks of published articles, embedded and searchable, updatable one article at a time."""

    def __init__(self, embedder: Embedder, store: VectorStore, meta: dict,
                 articles: dict[str, ArticleEntry], chunks: dict[int, ChunkEntry], next_id: int):
        self.embedder = embedder
        self.store = store
        self.meta = meta
        self.articles = articles
        self.chunks = chunks
        self.next_id = next_id

    # ----- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, embedder: Embedder, max_chars: int = DEFAULT_MAX_CHARS) -> "KnowledgeIndex":
        """An empty index for this embedder."""
        meta = {
            "format": FORMAT_VERSION,
            "backend": embedder.backend,
            "model": embedder.model,
            "dim": embedder.dim,
            "max_chars": max_chars,
            "built_at": None,
            "build_seconds": None,
        }
        return cls(embedder, VectorStore(embedder.dim), meta, {}, {}, 1)

    @property
    def max_chars(self) -> int:
        return int(self.meta["max_chars"])

    def build(self, articles: Iterable[Article], progress: bool = False) -> None:
        """Index all these articles, replacing whatever the index held."""
        started = time.perf_counter()
        self.store = VectorStore(self.embedder.dim)
        self.articles, self.chunks, self.next_id = {}, {}, 1
        articles = list(articles)
        pending = [(article, chunk) for article in articles for chunk in chunk_article(article, self.max_chars)]
        texts = [chunk.embedding_text(article.title) for article, chunk in pending]
        vectors = self._encode_documents(texts, progress)
        for article in articles:
            self._remember_article(article)
        ids = self._remember_chunks([chunk for _, chunk in pending])
        self.store.add(ids, vectors)
        self.meta["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.meta["build_seconds"] = round(time.perf_counter() - started, 3)

    def _encode_documents(self, texts: list[str], progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        batches = range(0, len(texts), ENCODE_BATCH)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="Embedding chunks", unit="batch", total=len(batches))
        return np.vstack([self.embedder.encode_documents(texts[i:i + ENCODE_BATCH]) for i in batches])

    def _remember_article(self, article: Article) -> ArticleEntry:
        entry = ArticleEntry(article.slug, article.title, article.lang, article.category,
                             article.visibility, list(article.tags), article.content_hash())
        self.articles[article.slug] = entry
        return entry

    def _remember_chunks(self, chunks: list[Chunk]) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + len(chunks), dtype=np.int64)
        self.next_id += len(chunks)
        for chunk_id, chunk in zip(ids, chunks):
            self.chunks[int(chunk_id)] = ChunkEntry(chunk.slug, chunk.ordinal, chunk.heading, chunk.text)
            self.articles[chunk.slug].chunk_ids.append(int(chunk_id))
        return ids

    def upsert(self, article: Article) -> bool:
        """Add or replace one article without a rebuild; returns False when it was already current."""
        current = self.articles.get(article.slug)
        if current is not None and current.content_hash == article.content_hash():
            return False
        chunks = chunk_article(article, self.max_chars)
        # Embed first: if the model fails, the index still holds the previous version intact.
        vectors = self._encode_documents([c.embedding_text(article.title) for c in chunks], progress=False)
        self.remove(article.slug)
        self._remember_article(article)
        self.store.add(self._remember_chunks(chunks), vectors)
        return True

    def remove(self, slug: str) -> bool:
        """Take an article out of the index; returns False if it was not there."""
        entry = self.articles.pop(slug, None)
        if entry is None:
            return False
        self.store.remove(entry.chunk_ids)
        for chunk_id in entry.chunk_ids:
            self.chunks.pop(chunk_id, None)
        return True

    # ----- search -------------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, lang: str | None = None,
               allow: Callable[[ArticleEntry], bool] | None = None) -> list[SearchHit]:
        """The k best articles for a query, each with its best-matching section.

        ``lang`` keeps only articles in that language; ``allow`` filters articles (e.g. internal ones
        for a customer). Results are distinct articles, best first.
        """
        if not self.chunks or k <= 0:
            return []
        query_vector = self.embedder.encode_queries([query])

        def keep(entry: ArticleEntry) -> bool:
            return (lang is None or entry.lang == lang) and (allow is None or allow(entry))

        fetch = min(self.store.count, max(k * 10, 200))
        while True:
            scores, ids = self.store.search(query_vector, fetch)
            best: dict[str, tuple[float, int]] = {}
            for score, chunk_id in zip(scores[0], ids[0]):
                if chunk_id < 0:
                    continue
                chunk = self.chunks[int(chunk_id)]
                if chunk.slug in best or not keep(self.articles[chunk.slug]):
                    continue
                best[chunk.slug] = (float(score), int(chunk_id))
            if len(best) >= k or fetch >= self.store.count:
                break
            fetch = self.store.count
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        hits = []
        for slug, (score, chunk_id) in ranked:
            entry, chunk = self.articles[slug], self.chunks[chunk_id]
            hits.append(SearchHit(slug, entry.title, entry.lang, entry.category, entry.visibility,
                                  chunk.heading, make_snippet(chunk.text, query), round(score, 4)))
        return hits

    # ----- persistence --------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """Identifies the indexed content and model: equal fingerprints mean nothing to rebuild."""
        return content_fingerprint(
            ((slug, entry.content_hash) for slug, entry in self.articles.items()),
            self.meta["backend"], self.meta["model"], self.max_chars)

    def info(self) -> dict:
        """Metadata plus counts, as saved beside the index."""
        return {**self.meta, "articles": len(self.articles), "chunks": len(self.chunks),
                "fingerprint": self.fingerprint()}

    def save(self, path: Path) -> None:
        """Write the index to one file, atomically: a reader sees the old file or the new one, never half."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "meta": self.info(),
            "next_id": self.next_id,
            "articles": [asdict(a) for a in self.articles.values()],
            "chunks": {str(i): asdict(c) for i, c in self.chunks.items()},
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, faiss=self.store.to_bytes(),
                         state=np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @staticmethod
    def read_info(path: Path) -> dict:
        """The saved metadata of an index file, without loading its vectors."""
        return _read_state(Path(path))[0]["meta"]

    @classmethod
    def load(cls, path: Path, embedder: Embedder) -> "KnowledgeIndex":
        """Load a saved index; refuse it if it was built with another embedder than ``embedder``."""
        path = Path(path)
        state, data = _read_state(path)
        meta = state["meta"]
        wanted = (embedder.backend, embedder.model)
        if (meta.get("backend"), meta.get("model")) != wanted or int(meta.get("dim", -1)) != embedder.dim:
            raise IndexMismatchError(
                f"The index {path} was built with {meta.get('backend')} / {meta.get('model')} "
                f"({meta.get('dim')} dimensions), but the configured embedder is {wanted[0]} / {wanted[1]} "
                f"({embedder.dim} dimensions). Rebuild it (`flask index build` or "
                f"`python -m indexer build`) instead of mixing two models' vectors.")
        store = VectorStore.from_bytes(data["faiss"], int(meta["dim"]))
        articles = {a["slug"]: ArticleEntry(**a) for a in state["articles"]}
        chunks = {int(i): ChunkEntry(**c) for i, c in state["chunks"].items()}
        if store.count != len(chunks):
            raise IndexMissingError(f"The index {path} is inconsistent ({store.count} vectors, "
                                    f"{len(chunks)} chunks); rebuild it.")
        meta = {k: v for k, v in meta.items() if k not in ("articles", "chunks", "fingerprint")}
        return cls(embedder, store, meta, articles, chunks, int(state["next_id"]))


def _read_state(path: Path):
    if not path.exists():
        raise IndexMissingError(f"No index at {path}; build it with `flask index build` "
                                f"or `python -m indexer build`.")
    try:
        data = np.load(path, allow_pickle=False)
        state = json.loads(bytes(data["state"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({exc}); rebuild it.") from None
    if state.get("meta", {}).get("format") != FORMAT_VERSION:
        raise IndexMissingError(f"The index {path} has an old format; rebuild it.")
    return state, data


def content_fingerprint(slug_hashes: Iterable[tuple[str, str]], backend: str, model: str,
                        max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """A hash of (slug, content hash) pairs and the model: what an index of that content would hold."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}|{backend}|{model}|{max_chars}".encode())
    for slug, content_hash in sorted(slug_hashes):
        digest.update(f"\n{slug}:{content_hash}".encode())
    return digest.hexdigest()
