"""The knowledge-base desk for agents: promote tickets, edit with a live preview, review, publish, history."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from ..auth import agent_required, role_required
from ..db import get_session
from ..domain import knowledge
from ..domain import tickets as ticket_service
from ..domain.markdown_render import render_markdown
from ..domain.errors import N_, DomainError, Invalid, NotAllowed, NotFound
from ..domain.models import Article, Ticket
from ..domain.numbers import parse_id
from ..errors import translated
from ..i18n import CATEGORY_LABELS
from ..search import SearchUnavailable, get_search
from .attachments import place_chosen_images, settings as attachment_settings

bp = Blueprint("kb", __name__, url_prefix="/kb")
publisher_required = role_required(knowledge.can_publish)


def _article(slug: str) -> Article:
    article = get_session().scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise NotFound(N_("There is no article '%(slug)s'."), slug=slug)
    return article


@dataclass(frozen=True)
class Duplicate:
    """A published article that may be the same topic as a draft, and how likely (0-1)."""

    slug: str
    title: str
    lang: str
    score: float


def duplicate_score(hit) -> float:
    """How likely an article is the draft's topic: its confidence that it answers the draft's text (fitted
    on data; the signal bench/duplicate_threshold.py found to separate duplicates best), or, on an index
    without a calibration, its semantic similarity."""
    return hit.confidence if hit.confidence is not None else hit.semantic


def possible_duplicates(draft: knowledge.ArticleDraft, exclude: str | None = None) -> list[Duplicate]:
    """Existing articles that look like this draft, most likely first: those whose duplicate score reaches
    MESA_DUPLICATE_THRESHOLD."""
    threshold = current_app.config["MESA_DUPLICATE_THRESHOLD"]
    try:
        hits = get_search().similar(f"{draft.title}. {draft.body}", k=5, user=current_user)
    except SearchUnavailable:
        return []
    found = [Duplicate(hit.slug, hit.title, hit.lang, round(duplicate_score(hit), 3)) for hit in hits
             if hit.slug != exclude and duplicate_score(hit) >= threshold]
    return sorted(found, key=lambda d: -d.score)


def index_article(article: Article) -> None:
    """Write the article's search document in this transaction (before the commit): a published article
    is searchable from the commit on, an archived one no longer. Raises ``IndexUpdateFailed`` (a
    DomainError: the caller rolls back and says so) when the index cannot be updated."""
    get_search().stage_article(get_session(), article)


def show_in_search() -> None:
    """After the commit: this process applies its own change now (the others within a poll)."""
    get_search().follow(wait=True)


def render_editor(draft: knowledge.ArticleDraft, article: Article | None = None, ticket: Ticket | None = None,
                  duplicates=None, status: int = 200, confirm_needed: bool = False):
    """The editor page with the live preview and the possible duplicates."""
    return render_template("kb/editor.html", draft=draft, article=article, ticket=ticket,
                           duplicates=duplicates if duplicates is not None else possible_duplicates(
                               draft, article.slug if article else None),
                           preview_html=render_markdown(draft.body), categories=list(CATEGORY_LABELS),
                           confirm_needed=confirm_needed), status


@bp.get("/")
@agent_required
def index():
    """Articles by state with their numbers: views, helpful ratio, citing tickets, deflections."""
    session = get_session()
    grouped = knowledge.articles_for_review(session)
    numbers = knowledge.article_numbers(session, [a for articles in grouped.values() for a in articles])
    return render_template("kb/index.html", grouped=grouped, numbers=numbers)


@bp.get("/new")
@agent_required
def new():
    """An empty editor."""
    return render_editor(knowledge.ArticleDraft(title="", body="", lang="es"), duplicates=[])[0]


@bp.get("/from-ticket/<int:ticket_id>")
@publisher_required
def promote(ticket_id: int):
    """"Promote to article": the ticket's problem and solution as a draft in the editor, not saved yet."""
    ticket = ticket_service.get_ticket(get_session(), ticket_id, current_user)
    try:
        draft = knowledge.draft_from_ticket(ticket)
    except Invalid as exc:
        flash(translated(exc), "error")
        return redirect(url_for("tickets.detail", ticket_id=ticket_id))
    return render_editor(draft, ticket=ticket)[0]


@bp.post("/new")
@agent_required
def create():
    """Save a new draft; when it looks like an existing article, ask first (or add to that article)."""
    session = get_session()
    ticket = None
    ticket_id = parse_id(request.form.get("ticket_id"))
    if ticket_id:
        ticket = ticket_service.get_ticket(session, ticket_id, current_user)
    placed = place_chosen_images()
    if placed is not None:
        return placed
    try:
        draft = knowledge.read_draft(request.form)
    except Invalid as exc:
        flash(translated(exc), "error")
        return render_editor(knowledge.unchecked_draft(request.form), ticket=ticket, duplicates=[], status=400)
    if request.form.get("action") == "preview":
        return render_editor(draft, ticket=ticket)
    duplicates = possible_duplicates(draft)
    if duplicates and request.form.get("confirm_new") != "1":
        flash(_("These articles look like the same topic. Add the solution to one of them, or save a new "
                "article anyway."), "info")
        return render_editor(draft, ticket=ticket, duplicates=duplicates, confirm_needed=True)
    article = knowledge.create_article(session, draft, current_user, source_ticket=ticket,
                                       files=attachment_settings())
    session.commit()
    flash(_("Draft saved. Submit it for review when it is ready."), "success")
    return redirect(url_for("kb.edit", slug=article.slug))


@bp.post("/articles/<slug>/append")
@publisher_required
def append(slug: str):
    """Add the ticket's solution to an existing article as a new section."""
    session = get_session()
    article = _article(slug)
    ticket = ticket_service.get_ticket(session, parse_id(request.form.get("ticket_id")) or 0, current_user)
    try:
        # Appending adds a section and changes nothing anyone is editing, so it applies to the current version.
        knowledge.append_solution(session, article, ticket, current_user, article.version,
                                  files=attachment_settings())
        index_article(article)
    except DomainError as exc:
        session.rollback()
        flash(translated(exc), "error")
        return redirect(url_for("kb.promote", ticket_id=ticket.id))
    session.commit()
    show_in_search()
    flash(_("The solution was added to “%(title)s”.", title=article.title), "success")
    return redirect(url_for("kb.edit", slug=article.slug))


@bp.route("/articles/<slug>/edit", methods=["GET", "POST"])
@agent_required
def edit(slug: str):
    """Edit an article; every save is a revision. A failed save shows the page again with the text kept."""
    session = get_session()
    article = _article(slug)
    if not knowledge.can_edit(current_user, article):
        flash(_("Only L2 agents and admins change published or archived articles."), "error")
        return redirect(url_for("public.article", slug=slug))
    if request.method == "GET":
        return render_editor(knowledge.ArticleDraft.of(article), article=article)[0]
    placed = place_chosen_images()
    if placed is not None:
        return placed
    raw = knowledge.unchecked_draft(request.form)
    try:
        draft = knowledge.read_draft(request.form)
        if request.form.get("action") == "preview":
            return render_editor(draft, article=article)
        revision = knowledge.edit_article(session, article, current_user, draft, request.form.get("version"),
                                          request.form.get("note", ""), files=attachment_settings())
        if revision is not None:
            index_article(article)
        session.commit()
    except DomainError as exc:
        session.rollback()
        flash(translated(exc), "error")
        return render_editor(raw, article=_article(slug), duplicates=[], status=exc.status)
    except StaleDataError:  # saved by someone else between our read and our write: the same refusal
        session.rollback()
        flash(translated(knowledge.changed_meanwhile(_article(slug))), "error")
        return render_editor(raw, article=_article(slug), duplicates=[], status=409)
    if revision is None:
        flash(_("Nothing changed."), "info")
    else:
        flash(_("Saved as revision %(number)d.", number=revision.number), "success")
        show_in_search()
    return redirect(url_for("kb.edit", slug=slug))


@bp.post("/articles/<slug>/state")
@agent_required
def change_state(slug: str):
    """Submit for review, publish, send back (with a comment), archive, reopen."""
    session = get_session()
    article = _article(slug)
    try:
        knowledge.change_state(session, article, current_user, request.form.get("action", ""),
                               request.form.get("version"), request.form.get("comment", ""))
        index_article(article)
    except NotAllowed:
        session.rollback()
        raise
    except DomainError as exc:
        session.rollback()
        flash(translated(exc), "error")
        return redirect(url_for("kb.edit", slug=slug) if knowledge.can_edit(current_user, article)
                        else url_for("public.article", slug=slug)), 303
    session.commit()
    show_in_search()
    messages = {"review": _("Submitted for review."), "published": _("Published: it is searchable now."),
                "draft": _("The article is a draft again."), "archived": _("Archived: it is no longer searchable.")}
    flash(messages[article.status], "success")
    return redirect(url_for("public.article", slug=slug) if article.status in ("published", "archived")
                    else url_for("kb.edit", slug=slug))


@bp.get("/articles/<slug>/history")
@agent_required
def history(slug: str):
    """Revisions, who did what, and a readable diff between any two revisions."""
    article = _article(slug)
    revisions = {r.number: r for r in article.revisions}
    newest = max(revisions) if revisions else 0
    new_number = parse_id(request.args.get("to")) or newest
    old_number = parse_id(request.args.get("from")) or max(1, new_number - 1)
    diff = []
    if old_number in revisions and new_number in revisions:
        diff = knowledge.diff_revisions(revisions[old_number], revisions[new_number])
    return render_template("kb/history.html", article=article, diff=diff, old_number=old_number,
                           new_number=new_number, can_restore=knowledge.can_publish(current_user))


@bp.post("/articles/<slug>/restore")
@publisher_required
def restore(slug: str):
    """Make an old revision current again."""
    session = get_session()
    article = _article(slug)
    try:
        revision = knowledge.restore_revision(session, article, current_user, request.form.get("number"),
                                              request.form.get("version"))
        index_article(article)
    except DomainError as exc:
        session.rollback()
        flash(translated(exc), "error")
        return redirect(url_for("kb.history", slug=slug)), 303
    session.commit()
    show_in_search()
    flash(_("Restored as revision %(number)d.", number=revision.number), "success")
    return redirect(url_for("kb.history", slug=slug))


@bp.post("/preview")
@agent_required
def preview():
    """The live preview: Markdown to sanitised HTML (the same rendering as the article page)."""
    body = request.form.get("body", "")
    if len(body) > knowledge.MAX_BODY:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("text"),
                      max=knowledge.MAX_BODY)
    return jsonify(html=render_markdown(body))


@bp.post("/duplicates")
@agent_required
def duplicates():
    """The duplicate check again as the agent edits (the editor calls it, debounced): the published articles
    that look like this title and text, above MESA_DUPLICATE_THRESHOLD, as data and as the editor's HTML.
    ``slug``: the article being edited, never its own duplicate; ``ticket_id``: the ticket being promoted
    (its solution can be added to a duplicate instead)."""
    title = " ".join(request.form.get("title", "").split())
    body = request.form.get("body", "")
    if len(title) > 300 or len(body) > knowledge.MAX_BODY:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("text"),
                      max=knowledge.MAX_BODY)
    exclude = request.form.get("slug") or None
    ticket_id = parse_id(request.form.get("ticket_id"))
    ticket = ticket_service.get_ticket(get_session(), ticket_id, current_user) if ticket_id else None
    draft = knowledge.ArticleDraft(title=title, body=body)
    hits = possible_duplicates(draft, exclude) if (title + body).strip() else []
    return jsonify(threshold=current_app.config["MESA_DUPLICATE_THRESHOLD"], duplicates=[{
        "slug": hit.slug, "title": hit.title, "lang": hit.lang, "url": url_for("public.article", slug=hit.slug),
        "score": hit.score} for hit in hits],
        html=render_template("kb/_duplicates.html", duplicates=hits, ticket=ticket if knowledge.can_publish(
            current_user) else None))
