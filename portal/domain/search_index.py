"""The search index's system of record: generations, documents (chunks and vectors) and change numbers.

Every publish, edit or archive writes its article's document in the same transaction as the change, under
the next change number. The number is taken by updating the one ``search_state`` row, which the database
keeps locked until the transaction ends, so numbers are committed in the order they are given: a process
that has applied every change up to N and then reads the rows with a number above N misses none.

A generation is one embedding of the knowledge base (a ranking and its models). A rebuild fills a new
generation beside the active one, then, holding the state row, adds what changed meanwhile and makes it
the active one: publishes during a rebuild are never lost.

Plain functions over a Session; the caller commits. The vectors come from the caller (``indexer`` makes
them), so nothing here runs a model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

import indexer
from indexer import PreparedArticle
from indexer.chunking import Chunk

from .articles import to_document
from .models import Article, SearchDocument, SearchGeneration, SearchState, SearchVector, utcnow

STATE_ID = 1
PAGE = 500  # documents read per query when a generation is loaded


@dataclass(frozen=True)
class Position:
    """Where the index stands: the active generation (its uid; None: no index yet) and the last change."""

    generation: str | None
    change: int


def position(session: Session) -> Position:
    """The active generation and the last change number: one cheap query (what followers poll)."""
    row = session.execute(select(SearchGeneration.uid, SearchState.last_change)
                          .select_from(SearchState)
                          .outerjoin(SearchGeneration, SearchGeneration.id == SearchState.active_generation_id)
                          .where(SearchState.id == STATE_ID)).first()
    return Position(row[0], int(row[1])) if row is not None else Position(None, 0)


def active_generation(session: Session) -> SearchGeneration | None:
    """The generation searches use (None before the first build)."""
    return session.scalar(select(SearchGeneration).join(SearchState, SearchState.active_generation_id ==
                                                        SearchGeneration.id).where(SearchState.id == STATE_ID))


def generation_by_uid(session: Session, uid: str) -> SearchGeneration | None:
    return session.scalar(select(SearchGeneration).where(SearchGeneration.uid == uid))


def next_change(session: Session) -> int:
    """The next change number. Holds the state row until the transaction ends: changes are serialised."""
    bumped = session.execute(update(SearchState).where(SearchState.id == STATE_ID)
                             .values(last_change=SearchState.last_change + 1)
                             .execution_options(synchronize_session=False))
    if bumped.rowcount == 0:  # a database made without the migrations (tests): the row is made on first use
        session.add(SearchState(id=STATE_ID, last_change=1))
        session.flush()
        return 1
    return int(session.scalar(select(SearchState.last_change).where(SearchState.id == STATE_ID)))


# ----- writing documents --------------------------------------------------------------------------


def write_document(session: Session, generation: SearchGeneration, slug: str,
                   prepared: PreparedArticle | None, change: int) -> None:
    """Put an article's document (``prepared``) in a generation, or mark it taken out (None)."""
    document = session.scalar(select(SearchDocument).where(SearchDocument.generation_id == generation.id,
                                                           SearchDocument.slug == slug))
    if document is None:
        if prepared is None:
            return  # never indexed in this generation: nothing to take out
        document = SearchDocument(generation_id=generation.id, slug=slug)
        session.add(document)
    document.change = change
    if prepared is None:
        document.article, document.chunks, document.content_hash = None, None, ""
        session.flush()
        session.execute(delete(SearchVector).where(SearchVector.document_id == document.id))
        return
    document.article = asdict(prepared.article)
    document.chunks = [asdict(chunk) for chunk in prepared.chunks]
    document.content_hash = prepared.article.content_hash()
    session.flush()
    existing = {v.backend: v for v in session.scalars(select(SearchVector)
                                                      .where(SearchVector.document_id == document.id))}
    for backend, vectors in prepared.vectors.items():
        row = existing.pop(backend, None) or SearchVector(document_id=document.id, backend=backend)
        row.rows = len(vectors)
        row.owners = np.ascontiguousarray(prepared.owners[backend], np.int32).tobytes()
        row.data = np.ascontiguousarray(vectors, np.float32).tobytes()
        session.add(row)
    for stale in existing.values():
        session.delete(stale)


def indexed_hashes(session: Session, generation: SearchGeneration) -> dict[str, str]:
    """slug -> content hash of every article the generation holds."""
    return dict(session.execute(select(SearchDocument.slug, SearchDocument.content_hash).where(
        SearchDocument.generation_id == generation.id, SearchDocument.article.is_not(None))).all())


@dataclass
class Difference:
    """What a generation lacks of the published articles (new or edited) and holds that is not published."""

    stale: list[str]  # slugs of published articles it lacks or holds in another version
    gone: list[str]  # slugs it holds that are not published any more

    def __len__(self) -> int:
        return len(self.stale) + len(self.gone)


def difference(session: Session, generation: SearchGeneration) -> Difference:
    """How a generation differs from the published articles (compared by content hash)."""
    held = indexed_hashes(session, generation)
    published = dict(session.execute(select(Article.slug, Article.content_hash)
                                     .where(Article.status == "published")).all())
    return Difference(sorted(slug for slug, h in published.items() if held.get(slug) != h),
                      sorted(slug for slug in held if slug not in published))


def published_hashes(session: Session, slugs: list[str]) -> dict[str, str]:
    """slug -> content hash of those of these articles that are published now."""
    found: dict[str, str] = {}
    for start in range(0, len(slugs), PAGE):
        found.update(session.execute(select(Article.slug, Article.content_hash).where(
            Article.slug.in_(slugs[start:start + PAGE]), Article.status == "published")).all())
    return found


def published_documents(session: Session, slugs: list[str]) -> Iterator[indexer.Article]:
    """The index form of these published articles, read a page at a time."""
    for start in range(0, len(slugs), PAGE):
        page = slugs[start:start + PAGE]
        documents = [to_document(article) for article in session.scalars(
            select(Article).where(Article.slug.in_(page), Article.status == "published").order_by(Article.slug))]
        yield from documents  # read whole first: the caller commits between the articles it is given


# ----- generations ---------------------------------------------------------------------------------


def start_generation(session: Session, ranking: str, signature: str, fields: dict,
                     max_chars: int) -> tuple[SearchGeneration, bool]:
    """A generation to build: an unfinished one for the same models (a build that was stopped goes on
    where it was), else a new one; older unfinished ones are dropped. Returns it and whether it resumes."""
    resumed = None
    for building in session.scalars(select(SearchGeneration).where(SearchGeneration.status != "active")
                                    .order_by(SearchGeneration.id.desc())):
        if (resumed is None and building.status == "building" and building.signature == signature
                and building.max_chars == max_chars):
            resumed = building
        else:  # another build's, or a retired one a killed build did not get to delete
            drop_generations(session, [building.id])
    if resumed is not None:
        return resumed, True
    generation = SearchGeneration(uid=uuid.uuid4().hex, ranking=ranking, signature=signature, fields=fields,
                                  max_chars=max_chars, status="building")
    session.add(generation)
    session.flush()
    return generation, False


def activate(session: Session, generation: SearchGeneration, build_seconds: float) -> list[int]:
    """Make ``generation`` the one searches use (the caller holds the state row: ``next_change``);
    returns the ids of the generations it replaces, to delete once this is committed."""
    state = session.get(SearchState, STATE_ID)
    replaced = [g.id for g in session.scalars(select(SearchGeneration).where(
        SearchGeneration.status == "active", SearchGeneration.id != generation.id))]
    session.execute(update(SearchGeneration).where(SearchGeneration.id.in_(replaced))
                    .values(status="retired").execution_options(synchronize_session=False))
    generation.status, generation.built_at, generation.build_seconds = "active", utcnow(), build_seconds
    state.active_generation_id = generation.id
    return replaced


def drop_generations(session: Session, ids: Iterable[int]) -> None:
    """Delete generations and their documents and vectors."""
    ids = list(ids)
    if not ids:
        return
    documents = select(SearchDocument.id).where(SearchDocument.generation_id.in_(ids))
    session.execute(delete(SearchVector).where(SearchVector.document_id.in_(documents)))
    session.execute(delete(SearchDocument).where(SearchDocument.generation_id.in_(ids)))
    session.execute(delete(SearchGeneration).where(SearchGeneration.id.in_(ids)))


# ----- reading documents ---------------------------------------------------------------------------


def vector_counts(session: Session, generation: SearchGeneration) -> dict[str, int]:
    """backend -> how many vectors the generation holds (lets a large store be quantised once, when full)."""
    return dict(session.execute(select(SearchVector.backend, func.sum(SearchVector.rows))
                                .join(SearchDocument, SearchDocument.id == SearchVector.document_id)
                                .where(SearchDocument.generation_id == generation.id)
                                .group_by(SearchVector.backend)).all())


def read_documents(session: Session, generation: SearchGeneration) -> Iterator[PreparedArticle]:
    """Every article the generation holds, with its chunks and vectors, a page at a time (by id)."""
    after = 0
    while True:
        page = (select(SearchDocument.id).where(SearchDocument.generation_id == generation.id,
                                                SearchDocument.article.is_not(None), SearchDocument.id > after)
                .order_by(SearchDocument.id).limit(PAGE))
        documents = _with_vectors(session, generation, SearchDocument.id.in_(page))
        if not documents:
            return
        yield from (prepared for _, prepared in documents)
        after = max(document.id for document, _ in documents)


def changes_since(session: Session, generation: SearchGeneration, change: int, after_id: int = 0,
                  limit: int = PAGE) -> list[tuple[SearchDocument, PreparedArticle | None]]:
    """The generation's rows written after change ``change`` (and, within it, after row ``after_id``), at most
    ``limit``, in (change, id) order: each with its document, or None when the article was taken out."""
    page = (select(SearchDocument.id).where(SearchDocument.generation_id == generation.id,
                                            tuple_(SearchDocument.change, SearchDocument.id) > tuple_(change, after_id))
            .order_by(SearchDocument.change, SearchDocument.id).limit(limit))
    return [(document, prepared) for document, prepared in _with_vectors(session, generation,
                                                                          SearchDocument.id.in_(page))]


def _with_vectors(session: Session, generation: SearchGeneration,
                  which) -> list[tuple[SearchDocument, PreparedArticle | None]]:
    """The documents ``which`` selects with their vectors, read in one statement (so a document and its
    vectors are always of the same version), in (change, id) order; None for a taken-out article."""
    dims = {backend: int(field["dim"]) for backend, field in generation.fields.items()}
    rows = session.execute(select(SearchDocument, SearchVector)
                           .outerjoin(SearchVector, SearchVector.document_id == SearchDocument.id)
                           .where(which).order_by(SearchDocument.change, SearchDocument.id)).all()
    grouped: dict[int, tuple[SearchDocument, dict[str, SearchVector]]] = {}
    for document, vector in rows:
        vectors = grouped.setdefault(document.id, (document, {}))[1]
        if vector is not None:
            vectors[vector.backend] = vector
    result = []
    for document, vectors in grouped.values():
        if document.article is None:
            result.append((document, None))
            continue
        prepared = PreparedArticle(indexer.Article(**document.article), [Chunk(**c) for c in document.chunks])
        for backend, dim in dims.items():
            row = vectors.get(backend)
            if row is None:
                raise ValueError(f"search document {document.slug} has no {backend} vectors")
            prepared.vectors[backend] = np.frombuffer(row.data, np.float32).reshape(row.rows, dim)
            prepared.owners[backend] = np.frombuffer(row.owners, np.int32)
        result.append((document, prepared))
    return result
