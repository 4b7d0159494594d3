"""`/api/v1/articles`: read what the caller may read; agents write drafts and move articles through review."""

from __future__ import annotations

from flask import url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from ..auth import agent_required, viewer
from ..db import get_session
from ..domain import articles as article_service
from ..domain import knowledge
from ..domain import tickets as ticket_service
from ..domain.models import Article
from ..views.kb import index_article, show_in_search
from .parsing import Blueprint
from .schemas import (ArticleCreate, ArticleDetail, ArticleEdit, ArticleList, ArticleListArgs, ArticleStateChange)

bp = Blueprint("api_v1_articles", __name__, url_prefix="/api/v1/articles",
               description="Knowledge-base articles: read; agents write and review.")


def article_out(article: Article) -> dict:
    """An article as the API shows it."""
    return {"slug": article.slug, "title": article.title, "lang": article.lang, "category": article.category,
            "topic": article.topic or "", "tags": list(article.tags or []), "visibility": article.visibility,
            "status": article.status, "version": article.version, "updated_at": article.updated_at,
            "url": url_for("public.article", slug=article.slug), "body": article.body}


def draft_of(data: dict) -> knowledge.ArticleDraft:
    """The JSON fields as the editor's form fields, checked by the editor's own rules."""
    return knowledge.read_draft({**data, "tags": ",".join(data.get("tags") or [])})


@bp.get("")
@bp.arguments(ArticleListArgs, location="query")
@bp.response(200, ArticleList)
def list_articles(args):
    """Articles the caller may read, by title: published public ones for everyone, every state for agents."""
    query = select(Article)
    user = viewer()
    if user is None or not user.is_agent:
        query = query.where(Article.status == "published", Article.visibility == "public")
    for name in ("category", "lang", "status"):
        if args.get(name):
            query = query.where(getattr(Article, name) == args[name])
    session = get_session()
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    articles = session.scalars(query.order_by(Article.title, Article.id).offset(args["offset"])
                               .limit(args["limit"]))
    return {"articles": [article_out(a) for a in articles], "total": total}


@bp.get("/<slug>")
@bp.response(200, ArticleDetail)
def get_article(slug: str):
    """One article with its Markdown (404 when the caller may not read it)."""
    return article_out(article_service.get_readable_article(get_session(), slug, viewer()))


@bp.post("")
@agent_required
@bp.arguments(ArticleCreate)
@bp.response(201, ArticleDetail)
def create_article(data):
    """Save a new draft (revision 1); promoting a ticket (``ticket_id``) is for L2 agents and admins."""
    session = get_session()
    ticket = None
    if data.get("ticket_id"):
        ticket = ticket_service.get_ticket(session, data["ticket_id"], current_user)
    article = knowledge.create_article(session, draft_of(data), current_user, source_ticket=ticket)
    session.commit()
    return article_out(article)


def _readable(slug: str) -> Article:
    return article_service.get_readable_article(get_session(), slug, viewer())


@bp.put("/<slug>")
@agent_required
@bp.arguments(ArticleEdit)
@bp.response(200, ArticleDetail)
def edit_article(data, slug: str):
    """Save new content as a revision (L1: drafts and articles in review; L2 and admins: any)."""
    session = get_session()
    article = _readable(slug)
    try:
        revision = knowledge.edit_article(session, article, current_user, draft_of(data), data["version"],
                                          data["note"])
        if revision is not None:
            index_article(article)
        session.commit()
    except StaleDataError:
        session.rollback()
        raise knowledge.changed_meanwhile(_readable(slug)) from None
    except Exception:
        session.rollback()
        raise
    if revision is not None:
        show_in_search()
    return article_out(article)


@bp.post("/<slug>/state")
@agent_required
@bp.arguments(ArticleStateChange)
@bp.response(200, ArticleDetail)
def change_state(data, slug: str):
    """Submit for review, publish, send back (with a comment), archive, reopen: the search index follows."""
    session = get_session()
    article = _readable(slug)
    try:
        knowledge.change_state(session, article, current_user, data["action"], data["version"], data["comment"])
        index_article(article)
        session.commit()
    except StaleDataError:
        session.rollback()
        raise knowledge.changed_meanwhile(_readable(slug)) from None
    except Exception:
        session.rollback()
        raise
    show_in_search()
    return article_out(article)
