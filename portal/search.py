"""The portal's one door into the indexer: loads the index lazily and keeps it in step with the database."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.orm import Session

import indexer
from indexer import IndexMissingError, KnowledgeIndex

from .domain.articles import searchable_articles, to_document
from .domain.models import Article, User


class SearchUnavailable(Exception):
    """The index is missing or unusable; the message says how to fix it."""


class SearchService:
    """Search over the saved index; the embedder and the index load on first use, not at start-up."""

    def __init__(self, index_path: Path, backend: str, model: str = "", embedder: indexer.Embedder | None = None):
        self.index_path = Path(index_path)
        self.backend = backend
        self.model = model
        self._embedder = embedder
        self._index: KnowledgeIndex | None = None
        self._loaded_mtime: float | None = None
        self._lock = threading.RLock()

    @property
    def embedder(self) -> indexer.Embedder:
        """The configured embedder (built on first use)."""
        if self._embedder is None:
            self._embedder = indexer.make_embedder(self.backend, self.model)
        return self._embedder

    def _current_mtime(self) -> float | None:
        try:
            return os.stat(self.index_path).st_mtime
        except FileNotFoundError:
            return None

    def index(self) -> KnowledgeIndex:
        """The loaded index, reloaded when another process has written a newer file."""
        with self._lock:
            mtime = self._current_mtime()
            if self._index is None or (mtime is not None and mtime != self._loaded_mtime):
                try:
                    self._index = KnowledgeIndex.load(self.index_path, self.embedder)
                except indexer.IndexProblem as exc:
                    raise SearchUnavailable(str(exc)) from None
                self._loaded_mtime = mtime
            return self._index

    def search(self, query: str, k: int, user: User | None, lang: str | None = None) -> list[indexer.SearchHit]:
        """The k best articles this user may read (internal articles only for agents)."""
        agent = user is not None and user.is_agent
        return self.index().search(query, k=k, lang=lang,
                                   allow=None if agent else (lambda entry: entry.visibility == "public"))

    def similar(self, text: str, k: int, user: User | None) -> list[indexer.SearchHit]:
        """Published articles most similar in meaning to a text (for duplicate detection), with the score."""
        return self.search(text[:2000], k, user)

    def database_fingerprint(self, session: Session) -> str:
        """What an up-to-date index of the database's published articles would be stamped with."""
        return indexer.content_fingerprint(
            ((a.slug, a.content_hash) for a in searchable_articles(session)),
            self.embedder.backend, self.embedder.model)

    def is_current(self, session: Session) -> bool:
        """Whether the saved index holds exactly the published articles, embedded with the configured model."""
        try:
            info = KnowledgeIndex.read_info(self.index_path)
        except IndexMissingError:
            return False
        return info.get("fingerprint") == self.database_fingerprint(session)

    def rebuild(self, session: Session, progress: bool = False) -> dict:
        """Index every published article from scratch and save; returns the index metadata."""
        with self._lock:
            index = KnowledgeIndex.create(self.embedder)
            index.build([to_document(a) for a in searchable_articles(session)], progress=progress)
            index.save(self.index_path)
            self._index, self._loaded_mtime = index, self._current_mtime()
            return index.info()

    def update_article(self, article: Article) -> None:
        """Put one article's current version in the index (or take it out if unpublished), then save."""
        with self._lock:
            index = self.index()
            changed = (index.upsert(to_document(article)) if article.status == "published"
                       else index.remove(article.slug))
            if changed:
                index.save(self.index_path)
                self._loaded_mtime = self._current_mtime()


def get_search() -> SearchService:
    """The app's search service."""
    return current_app.extensions["mesa_search"]


def init_app(app: Flask, embedder: indexer.Embedder | None = None) -> None:
    """Register the search service; nothing is loaded until the first search."""
    path = app.config["MESA_INDEX_PATH"] or str(Path(app.instance_path) / "index.npz")
    app.extensions["mesa_search"] = SearchService(Path(path), app.config["MESA_EMBEDDER"],
                                                  app.config["MESA_EMBEDDER_MODEL"], embedder)
