"""Ask for help: the knowledge base answers first; a ticket is created only when self-service fails."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import throttle
from ..db import get_session
from ..domain import articles as article_service
from ..domain import attachments as attachment_service
from ..domain import events
from ..domain import tickets as ticket_service
from ..domain.errors import N_, Invalid, NotAllowed, NotFound
from ..domain.models import Article
from ..errors import translated
from wtforms.fields.choices import SelectChoice

from ..forms import HelpRequestForm
from ..i18n import CATEGORY_LABELS
from ..background import request_delivery
from ..notifications import notify_requester
from ..search import SearchUnavailable, best_confidence, get_search
from ..suggestions import MAX_SUGGESTIONS, suggestion_query
from .api import why_it_matched
from .attachments import settings as attachment_settings, uploads_from_request
from ..tracking import browser_session_id

bp = Blueprint("help", __name__)


def suggest(query: str):
    """Up to five articles that confidently answer the request (by the same ranking and threshold as search),
    recorded as shown; the question is recorded once per burst of calls while the person types."""
    if not query:
        return []
    throttle.limit_searches()
    search = get_search()
    hits = search.search(query, MAX_SUGGESTIONS, current_user if current_user.is_authenticated else None)
    answers = search.answers(hits)
    session = get_session()
    user_id = current_user.id if current_user.is_authenticated else None
    question = events.record_question(session, browser_session_id(), user_id, query, len(hits), bool(answers),
                                      best_confidence(hits), refining=True)
    events.record_suggestions(session, browser_session_id(), user_id, query, [h.slug for h in answers], question)
    session.commit()
    return answers


def _form() -> HelpRequestForm:
    form = HelpRequestForm()
    form.category.choices = [SelectChoice(key, str(label)) for key, label in CATEGORY_LABELS.items()]
    if not form.category.data:
        form.category.data = "general"
    return form


def _shown_articles(slugs: list[str]) -> list[tuple[str, str]]:
    """(slug, title) of the suggested articles the form says were shown, checked against the database."""
    slugs = [s for s in dict.fromkeys(slugs) if s][:MAX_SUGGESTIONS * 4]
    if not slugs:
        return []
    offered = {article.slug: article.title for article in get_session().scalars(
        select(Article).where(Article.slug.in_(slugs))) if article_service.can_offer(article, current_user)}
    return [(slug, offered[slug]) for slug in slugs if slug in offered]


@bp.route("/help", methods=["GET", "POST"])
@login_required
def ask():
    """Step 1: describe the problem and check for answers. Step 2: solved, or "I still need help"."""
    form = _form()
    hits, checked, query, search_down = [], False, "", False
    shown = request.form.getlist("shown")
    if request.method == "GET" and request.args.get("q"):  # "Ask for help" from a search: the question carried over
        form.subject.data = " ".join(request.args["q"].split())[:200]
    if request.method == "POST":
        action = request.form.get("action", "check")
        if not form.validate():
            return render_template("help/ask.html", form=form, hits=[], checked=False, shown=shown), 400
        query = suggestion_query(form.subject.data, form.description.data)
        if action == "submit":
            return _create_ticket(form, query)
        if uploads_from_request():  # a page shown again cannot keep the files chosen in it
            flash(_("Your files are attached when you create the ticket: choose them again then."), "info")
        checked = True
        try:
            hits = suggest(query)
        except SearchUnavailable as exc:  # self-service failing never blocks asking for help
            current_app.logger.error("search unavailable, ask-for-help goes on without suggestions: %s", exc)
            search_down = True
        shown = list(dict.fromkeys(shown + [hit.slug for hit in hits]))
        if hits and form.category.data == "general" and hits[0].category in CATEGORY_LABELS:
            form.category.data = hits[0].category  # a good guess the customer can still change
    return render_template("help/ask.html", form=form, hits=hits, checked=checked, query=query, shown=shown,
                           search_down=search_down)


def _create_ticket(form: HelpRequestForm, query: str):
    session = get_session()
    shown = _shown_articles(request.form.getlist("shown"))
    opened = events.opened_articles(session, browser_session_id(), current_user.id, [slug for slug, _title in shown])
    try:
        # The files are checked first: one over a limit refuses the ticket, and the form keeps what was written.
        files = attachment_service.check_uploads(uploads_from_request(), attachment_settings())
        ticket = ticket_service.create_ticket(
            session, current_user, form.subject.data, form.description.data, form.category.data,
            form.impact.data, form.urgency.data, current_app.extensions["mesa_sla"],
            ticket_type=form.type.data, asset_tag=form.asset_tag.data or "", lang=str(get_locale()),
            suggestions=shown, opened=opened)
        attachment_service.attach_to_event(session, attachment_settings(), ticket, ticket.events[0], current_user,
                                           files)
    except (Invalid, NotAllowed) as exc:  # NotAllowed: the address is not confirmed yet
        session.rollback()
        flash(translated(exc), "error")
        return render_template("help/ask.html", form=form, hits=[], checked=False,
                               shown=request.form.getlist("shown")), exc.status
    events.record_event(session, "ticket_created", browser_session_id(), current_user.id, query=query,
                        ticket_id=ticket.id)
    notify_requester(session, ticket, list(ticket.events))
    session.commit()
    request_delivery()
    hours = current_app.extensions["mesa_sla"].targets[ticket.priority][0].total_seconds() / 3600
    flash(_("Ticket %(number)s created. You can expect a first answer within %(hours)s hours.",
            number=ticket.number, hours=f"{hours:g}"), "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post("/help/solved")
@login_required
def solved():
    """"This solved my problem" (a published article the user may read): record the deflection, no ticket.

    One deflection per person and article in SOLVED_ONCE_DAYS however often it is posted, and at most
    MESA_FEEDBACK_LIMIT_ADDRESS posts per client address.
    """
    slug = request.form.get("article", "")
    query = " ".join(request.form.get("query", "").split())[:500]
    article = get_session().scalar(select(Article).where(Article.slug == slug))
    if article is None or not article_service.can_offer(article, current_user):
        raise NotFound(N_("There is no article '%(slug)s'."), slug=slug)
    throttle.limit("feedback-address", throttle.client_address())
    events.record_once(get_session(), "solved", browser_session_id(), current_user.id, slug,
                       timedelta(days=events.SOLVED_ONCE_DAYS), query=query)
    get_session().commit()
    return render_template("help/solved.html", article=article)


@bp.get("/api/suggest")
def api_suggest():
    """Suggestions while the customer types (the page calls it, debounced): at most five articles."""
    query = " ".join((request.args.get("q") or "").split())
    if len(query) > current_app.config["MESA_SEARCH_MAX_QUERY"]:
        raise Invalid(N_("The search is too long: at most %(max)d characters."),
                      max=current_app.config["MESA_SEARCH_MAX_QUERY"])
    if len(query) < 3:
        return jsonify(query=query, answered=False, results=[])
    hits = suggest(query)
    return jsonify(query=query, answered=bool(hits), results=[{
        "slug": hit.slug, "title": hit.title, "url": url_for("public.article", slug=hit.slug),
        "lang": hit.lang, "category": hit.category, "section": hit.heading, "snippet": hit.snippet,
        "score": hit.score, "confidence": hit.confidence, "why": why_it_matched(hit)} for hit in hits])
