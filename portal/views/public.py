"""Pages for everyone: home, search, categories, articles, the language switch."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from .. import throttle
from ..auth import safe_next_url, viewer
from ..db import get_session
from ..domain import articles as article_service
from ..domain import events, knowledge
from ..domain.errors import N_, Invalid
from ..domain.markdown_render import render_markdown
from ..errors import translated
from ..i18n import ui_languages
from ..search import best_confidence, get_search
from ..tracking import browser_session_id
from .search_params import read_search_request

bp = Blueprint("public", __name__)


@bp.get("/")
def home():
    """The search box and the categories."""
    categories = article_service.category_counts(get_session(), viewer())
    return render_template("public/home.html", categories=categories)


@bp.get("/search")
def search():
    """Search results: title, category, the matching section as a snippet, language."""
    if not request.args.get("q", "").strip():
        return redirect(url_for("public.home"))
    try:
        params = read_search_request(request.args)
    except Invalid as exc:
        return render_template("public/search.html", query=request.args.get("q", "")[:200], hits=[],
                               error=translated(exc)), 400
    throttle.limit_searches()
    search_service = get_search()
    hits = search_service.search(params.query, params.k, viewer(), lang=params.lang)
    answers = search_service.answers(hits)
    events.record_question(get_session(), browser_session_id(), getattr(viewer(), "id", None), params.query,
                           len(hits), bool(answers), best_confidence(hits))
    get_session().commit()
    return render_template("public/search.html", query=params.query, answers=answers,
                           others=[hit for hit in hits if hit not in answers], lang=params.lang, error=None)


@bp.get("/categories/<category>")
def category(category: str):
    """The articles of one category."""
    articles = article_service.articles_in_category(get_session(), category, viewer())
    if not articles:
        abort(404)
    return render_template("public/category.html", category=category, articles=articles)


@bp.get("/articles/<slug>")
def article(slug: str):
    """One article, its Markdown rendered as sanitised HTML."""
    session = get_session()
    found = article_service.get_readable_article(session, slug, viewer())
    from_suggestion = request.args.get("from") == "suggestion"
    query = " ".join(request.args.get("q", "").split())[:500]
    events.record_once(session, "article_opened", browser_session_id(), getattr(viewer(), "id", None), slug,
                       timedelta(minutes=events.OPENED_ONCE_MINUTES), query=query)
    session.commit()
    agent_info = {}
    if viewer() is not None and viewer().is_agent:
        agent_info = {"numbers": knowledge.article_numbers(session, [found])[found.id],
                      "can_edit": knowledge.can_edit(viewer(), found),
                      "can_publish": knowledge.can_publish(viewer())}
    return render_template("public/article.html", article=found, from_suggestion=from_suggestion, query=query,
                           body_html=render_markdown(found.body),
                           other_versions=article_service.other_versions(session, found, viewer()), **agent_info)


@bp.post("/articles/<slug>/feedback")
def feedback(slug: str):
    """"Was this helpful?": yes or no, and an optional comment (one answer per person: the signed-in user,
    else the browser session; at most MESA_FEEDBACK_LIMIT_ADDRESS answers per client address)."""
    session = get_session()
    found = article_service.get_readable_article(session, slug, viewer())
    answer = request.form.get("helpful")
    if answer not in ("yes", "no"):
        raise Invalid(N_("Answer yes or no."))
    throttle.limit("feedback-address", throttle.client_address())
    knowledge.record_feedback(session, found, answer == "yes", request.form.get("comment", ""),
                              browser_session_id(), getattr(viewer(), "id", None))
    session.commit()
    flash(_("Thank you for your feedback."), "success")
    return redirect(url_for("public.article", slug=slug) + "#feedback", 303)


@bp.get("/language/<code>")
def set_language(code: str):
    """Switch the UI language, then go back where the user was."""
    if code not in ui_languages():
        abort(404)
    session["ui_lang"] = code
    return redirect(safe_next_url(request.args.get("next")) or url_for("public.home"))
