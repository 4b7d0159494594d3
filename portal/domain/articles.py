"""Articles in the database: import from and export to Markdown files, reading rules (rendering:
markdown_render)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import indexer
from indexer.articles import write_article

from .errors import N_, NotFound
from .models import Article, ArticleRevision, User, utcnow


def to_document(article: Article) -> indexer.Article:
    """The file/index form of a database article."""
    return indexer.Article(slug=article.slug, title=article.title, lang=article.lang, body=article.body,
                           category=article.category, tags=list(article.tags or []),
                           visibility=article.visibility, status=article.status, topic=article.topic or "")


@dataclass
class ImportReport:
    """What an import did; ``kept`` are articles changed in the portal that the files would have undone."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)


def import_articles(session: Session, documents: list[indexer.Article], overwrite: bool = False) -> ImportReport:
    """Create or update articles by slug; the database is the system of record.

    A file equal to the article is skipped. A changed file updates the article only if the article is still
    exactly what was last imported; an article changed in the portal since (edited, published, archived...)
    is kept and listed, unless ``overwrite`` says the files win.
    """
    report = ImportReport()
    existing = {a.slug: a for a in session.scalars(select(Article).where(
        Article.slug.in_([d.slug for d in documents])))}
    for document in documents:
        file_hash = document.content_hash()
        article = existing.get(document.slug)
        if article is None:
            article = Article(slug=document.slug)
            session.add(article)
            report.created.append(document.slug)
        else:
            current_hash = to_document(article).content_hash()
            if current_hash == file_hash:
                if article.imported_hash != file_hash:  # e.g. portal edits exported to the files
                    article.imported_hash = file_hash
                report.unchanged.append(document.slug)
                continue
            if current_hash == article.imported_hash:
                report.updated.append(document.slug)
            elif not overwrite:
                report.kept.append(document.slug)
                continue
            else:
                report.overwritten.append(document.slug)
        article.title = document.title
        article.lang = document.lang
        article.category = document.category
        article.topic = document.topic
        article.tags = list(document.tags)
        article.visibility = document.visibility
        article.status = document.status
        article.body = document.body
        article.content_hash = article.imported_hash = file_hash
        add_revision(article, None, "imported over changes made in the portal"
                     if document.slug in report.overwritten else "imported")
    session.flush()
    return report


def add_revision(article: Article, author: User | None, note: str = "") -> ArticleRevision:
    """Snapshot the article's current content as its next revision."""
    revision = ArticleRevision(number=len(article.revisions) + 1, title=article.title, lang=article.lang,
                               category=article.category, topic=article.topic or "",
                               tags=list(article.tags or []), visibility=article.visibility, body=article.body, author=author,
                               author_id=author.id if author else None, note=note[:300], created_at=utcnow())
    article.revisions.append(revision)
    return revision


def import_directory(session: Session, directory: Path, overwrite: bool = False) -> ImportReport:
    """Import every article file of a directory (bad files raise ArticleFormatError naming the file)."""
    return import_articles(session, indexer.read_articles(directory), overwrite)


def export_directory(session: Session, directory: Path) -> int:
    """Write every article to ``<slug>.md`` in a directory, in the canonical file format."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for article in session.scalars(select(Article).order_by(Article.slug)):
        write_article(directory, to_document(article))
        count += 1
    return count


def can_read(article: Article, user: User | None) -> bool:
    """Public published articles are for everyone; internal ones and drafts for agents only."""
    if article.is_public:
        return True
    return user is not None and user.is_agent


def can_offer(article: Article, user: User | None) -> bool:
    """Whether the article may be offered to the user as the answer to a problem: published and readable."""
    return article.status == "published" and can_read(article, user)


def get_readable_article(session: Session, slug: str, user: User | None) -> Article:
    """The article with this slug if the user may read it; otherwise NotFound (not even its existence)."""
    article = session.scalar(select(Article).where(Article.slug == slug))
    if article is None or not can_read(article, user):
        raise NotFound(N_("There is no article '%(slug)s'."), slug=slug)
    return article


def other_versions(session: Session, article: Article, user: User | None) -> list[Article]:
    """The article's versions in other languages (same topic) that the user may read."""
    if not article.topic:
        return []
    query = select(Article).where(Article.topic == article.topic, Article.id != article.id).order_by(Article.lang)
    return [a for a in session.scalars(query) if can_read(a, user)]


def searchable_articles(session: Session) -> list[Article]:
    """Articles that belong in the search index: every published one (internal ones are filtered per user)."""
    return list(session.scalars(_searchable()))


def searchable_documents(session: Session, batch: int = 500) -> Iterator[indexer.Article]:
    """``searchable_articles`` in their index form, read a batch at a time: building the index of a large
    knowledge base never holds every article at once (the index keeps what it needs of each)."""
    for article in session.scalars(_searchable().execution_options(yield_per=batch)):
        yield to_document(article)


def _searchable():
    return select(Article).where(Article.status == "published").order_by(Article.slug)


def category_counts(session: Session, user: User | None) -> list[tuple[str, int]]:
    """Categories with how many articles the user can read in each, largest first."""
    query = select(Article.category, func.count()).group_by(Article.category)
    if user is None or not user.is_agent:
        query = query.where(Article.status == "published", Article.visibility == "public")
    rows = session.execute(query).all()
    return sorted(((c, n) for c, n in rows), key=lambda row: (-row[1], row[0]))


def articles_in_category(session: Session, category: str, user: User | None) -> list[Article]:
    """The readable articles of one category, by title."""
    query = select(Article).where(Article.category == category).order_by(Article.title)
    return [a for a in session.scalars(query) if can_read(a, user)]
