"""Ticket pages: the requester follows and answers; agents work the ticket (one page, two views)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from indexer import detect_language

from ..auth import agent_required
from ..db import get_session
from ..domain import attachments as attachment_service
from ..domain import knowledge
from ..domain import tickets as ticket_service
from ..domain.markdown_render import render_message
from ..domain.errors import Conflict, DomainError, NotAllowed
from ..domain.models import Article, CannedReply, InboundMail, Ticket, utcnow
from ..domain.numbers import parse_id
from ..errors import translated
from ..i18n import status_label
from ..background import request_delivery
from ..notifications import notify_requester
from ..search import SearchUnavailable, get_search
from ..similar_tickets import similar_tickets
from ..gap_service import question_vectors
from .attachments import settings as attachment_settings, uploads_from_request

bp = Blueprint("tickets", __name__)


def fill_placeholders(text: str, ticket: Ticket, agent) -> str:
    """Canned-reply placeholders: {requester_name}, {ticket_number}, {agent_name}, {subject}."""
    values = {"requester_name": ticket.requester.name, "ticket_number": ticket.number,
              "agent_name": agent.name, "subject": ticket.subject}
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _matching_articles(ticket: Ticket):
    """Articles that match the ticket, without the ones the customer already saw (nor their other-language
    versions): those are listed apart."""
    try:
        hits = get_search().search(f"{ticket.subject}. {ticket.description}"[:500], 5, current_user)
    except SearchUnavailable:
        return []
    seen = {s.article_slug for s in ticket.suggestions}
    if seen:
        topics = set(get_session().scalars(select(Article.topic).where(Article.slug.in_(seen), Article.topic != "")))
        seen |= set(get_session().scalars(select(Article.slug).where(Article.topic.in_(topics)))) if topics else set()
    return [hit for hit in hits if hit.slug not in seen]


def _similar_solved(ticket: Ticket):
    """The solved tickets most like this one (agents only), or None when the model could not embed them."""
    try:
        return similar_tickets(get_session(), ticket, question_vectors(current_app))
    except Exception:  # a model that fails to load must not take the ticket page down with it
        current_app.logger.exception("similar tickets for ticket %s", ticket.id)
        return None


def canned_by_language(ticket: Ticket, agent) -> list[tuple[str, list[tuple[CannedReply, str]]]]:
    """The canned replies, filled in for this ticket, grouped by their language (told from their text), the
    requester's language first: [(lang, [(reply, filled body)])]."""
    groups: dict[str, list[tuple[CannedReply, str]]] = {}
    for reply in session_canned():
        lang = detect_language(f"{reply.title}. {reply.body}", default=ticket.lang)
        groups.setdefault(lang, []).append((reply, fill_placeholders(reply.body, ticket, agent)))
    return sorted(groups.items(), key=lambda group: (group[0] != ticket.lang, group[0]))


def shown_events(ticket: Ticket) -> list:
    """The activity the current user may see; for the requester without the status changes that read the
    same in their words (open -> escalated is "In progress" both times)."""
    events = ticket_service.visible_events(ticket, current_user)
    if current_user.is_agent:
        return events
    return [e for e in events if e.kind != "status"
            or status_label(e.data.get("from")) != status_label(e.data.get("to"))]


def render_ticket(ticket: Ticket, status: int = 200, draft: dict | None = None):
    """The ticket page for the current user; ``draft`` keeps text the user typed when a save failed."""
    agent_view = current_user.is_agent
    context = {
        "ticket": ticket,
        "events": shown_events(ticket),
        "sla": ticket_service.sla_state(ticket, utcnow()),
        "draft": draft or {},
        "render_message": render_message,
        "attachments": attachment_service.of_ticket(get_session(), ticket, current_user),
    }
    if agent_view:
        context.update(
            agents=ticket_service.agents(get_session()),
            canned=canned_by_language(ticket, current_user),
            articles=_matching_articles(ticket),
            similar=_similar_solved(ticket),
            minutes=ticket_service.total_minutes(ticket),
            portal_url=current_app.config["MESA_PORTAL_URL"].rstrip("/"),
            produced=knowledge.articles_from_ticket(get_session(), ticket),
            can_promote=knowledge.can_publish(current_user),
        )
    return render_template("tickets/detail.html", **context), status


def session_canned() -> list[CannedReply]:
    """Every canned reply, by title."""
    return list(get_session().scalars(select(CannedReply).order_by(CannedReply.title)))


@bp.get("/tickets")
@login_required
def mine():
    """The customer's own tickets (agents go to their queue)."""
    if current_user.is_agent:
        return redirect(url_for("desk.queue"))
    return render_template("tickets/mine.html", tickets=ticket_service.tickets_of(get_session(), current_user))


@bp.get("/tickets/<int:ticket_id>")
@login_required
def detail(ticket_id: int):
    """One ticket: status, SLA, the activity the user may see, and what they can do."""
    return render_ticket(ticket_service.get_ticket(get_session(), ticket_id, current_user))[0]


def _apply(ticket_id: int, change, draft_fields=()):
    """Run one change on a ticket; save, notify, and redirect; or show the page again with the message
    and the user's text kept (``draft_fields``)."""
    session = get_session()
    ticket = ticket_service.get_ticket(session, ticket_id, current_user)
    draft = {name: request.form.get(name, "") for name in draft_fields}
    logged_before = len(ticket.events)
    try:
        change(session, ticket)
        notify_requester(session, ticket, ticket.events[logged_before:])
        session.commit()
    except DomainError as exc:
        session.rollback()
        ticket = ticket_service.get_ticket(session, ticket_id, current_user)
        flash(translated(exc), "error")
        return render_ticket(ticket, exc.status if isinstance(exc, Conflict) else 400, draft)
    except StaleDataError:  # saved by someone else between our read and our write: the same refusal
        session.rollback()
        ticket = ticket_service.get_ticket(session, ticket_id, current_user)
        flash(translated(ticket_service.changed_meanwhile(ticket)), "error")
        return render_ticket(ticket, 409, draft)
    request_delivery()
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/reply")
@login_required
def reply(ticket_id: int):
    """A reply: public for the requester, or (agents) an internal note; a canned reply can fill it."""
    def change(session, ticket):
        body = request.form.get("body", "")
        if current_user.is_agent and not body.strip() and request.form.get("canned"):
            canned_id = parse_id(request.form["canned"])
            canned = session.get(CannedReply, canned_id) if canned_id else None
            body = fill_placeholders(canned.body, ticket, current_user) if canned else ""
        public = not current_user.is_agent or request.form.get("visibility", "public") == "public"
        files = attachment_service.check_uploads(uploads_from_request(), attachment_settings())
        event = ticket_service.add_reply(session, ticket, current_user, body, public, request.form.get("version"))
        attachment_service.attach_to_event(session, attachment_settings(), ticket, event, current_user, files)
        if current_user.is_agent and public:
            knowledge.cite_articles(session, ticket, body)
        return event

    return _apply(ticket_id, change, ("body",))


def eml_download(record: InboundMail) -> Response:
    """The original e-mail as a file to save (never shown inline by the browser)."""
    if not record.raw:
        abort(404)
    return Response(record.raw, mimetype="message/rfc822", headers={
        "Content-Disposition": f'attachment; filename="mail-{record.id}.eml"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@bp.get("/tickets/<int:ticket_id>/mail/<int:mail_id>.eml")
@login_required
def original_mail(ticket_id: int, mail_id: int):
    """An e-mail that made or answered the ticket, as .eml: for agents, and for the requester the mails
    they sent themselves."""
    session = get_session()
    ticket = ticket_service.get_ticket(session, ticket_id, current_user)
    record = session.get(InboundMail, mail_id)
    if record is None or record.ticket_id != ticket.id or not (
            current_user.is_agent or record.sender == current_user.email):
        abort(404)
    return eml_download(record)


@bp.post("/tickets/<int:ticket_id>/survey")
@login_required
def survey(ticket_id: int):
    """The requester's one-click rating (1-5) and optional comment."""
    session = get_session()
    ticket = ticket_service.get_ticket(session, ticket_id, current_user)
    try:
        ticket_service.submit_survey(session, ticket, current_user, request.form.get("rating"),
                                     request.form.get("comment", ""))
    except DomainError as exc:
        session.rollback()
        flash(translated(exc), "error")
        return render_ticket(ticket_service.get_ticket(session, ticket_id, current_user), exc.status)
    session.commit()
    flash(_("Thank you for your rating."), "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/close")
@login_required
def close_fixed(ticket_id: int):
    """The requester's "Close my ticket, it is fixed" (not the desk's resolution: no solution is recorded);
    403 for anyone else, the page with why not when the ticket is no longer open."""
    session = get_session()
    ticket = ticket_service.get_ticket(session, ticket_id, current_user)
    try:
        ticket_service.close_by_requester(session, ticket, current_user)
        session.commit()
    except NotAllowed:
        session.rollback()
        raise
    except (DomainError, StaleDataError) as exc:  # resolved or closed meanwhile, or saved at this very moment
        session.rollback()
        ticket = ticket_service.get_ticket(session, ticket_id, current_user)
        flash(translated(exc) if isinstance(exc, DomainError) else translated(ticket_service.changed_meanwhile(
            ticket)), "error")
        return render_ticket(ticket, 409)
    flash(_("Ticket %(number)s is closed. Thank you for telling us it is fixed.", number=ticket.number),
          "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post("/tickets/<int:ticket_id>/assign")
@agent_required
def assign(ticket_id: int):
    """Reassign the ticket by hand."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.assign(
        session, ticket, current_user, request.form.get("assignee"), request.form.get("version")))


@bp.post("/tickets/<int:ticket_id>/status")
@agent_required
def status(ticket_id: int):
    """Open / pending customer / closed."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.change_status(
        session, ticket, current_user, request.form.get("status", ""), request.form.get("version")))


@bp.post("/tickets/<int:ticket_id>/priority")
@agent_required
def priority(ticket_id: int):
    """Re-assess impact and urgency."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.change_priority(
        session, ticket, current_user, request.form.get("impact"), request.form.get("urgency"),
        current_app.extensions["mesa_sla"], request.form.get("version")))


@bp.post("/tickets/<int:ticket_id>/escalate")
@agent_required
def escalate(ticket_id: int):
    """Escalate L1 -> L2 with a reason."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.escalate(
        session, ticket, current_user, request.form.get("reason", ""), request.form.get("version")), ("reason",))


@bp.post("/tickets/<int:ticket_id>/time")
@agent_required
def time_spent(ticket_id: int):
    """Log minutes spent (on the version of the ticket the agent saw, like every other change)."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.log_time(
        session, ticket, current_user, request.form.get("minutes"), request.form.get("version"),
        request.form.get("note", "")), ("minutes", "note"))


@bp.post("/tickets/<int:ticket_id>/resolve")
@agent_required
def resolve(ticket_id: int):
    """Resolve with a solution."""
    return _apply(ticket_id, lambda session, ticket: ticket_service.resolve(
        session, ticket, current_user, request.form.get("solution", ""), request.form.get("version")),
        ("solution",))
