"""The pages behind the one-click links of e-mails (portal/mail_links.py): no sign-in, the signed link is
the permission. A GET only shows what the link will do, with a button; the button POSTs (with its CSRF
token) and makes the change, so a mail scanner that fetches every link changes nothing.

"This solved my problem" closes the ticket as solved by self-service and counts an e-mail deflection, once:
a second use, or a ticket resolved or closed meanwhile, gets a page saying so (409) and counts nothing. The
rating link records the satisfaction survey by the usual rules (once per ticket, resolved tickets only).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from ..db import get_session
from ..domain import tickets as ticket_service
from ..domain.errors import DomainError
from ..domain.models import Article, Ticket, TicketStatus
from ..domain.numbers import parse_int
from ..errors import translated
from ..i18n import status_label
from ..mail_articles import record_solved
from ..mail_links import read_rating_token, read_solved_token

bp = Blueprint("mail_links", __name__, url_prefix="/mail")


def _article_title(slug: str) -> str:
    """The title of the article a link names (its slug when it is gone)."""
    return get_session().scalar(select(Article.title).where(Article.slug == slug)) or slug


def _self_solved_by(ticket: Ticket) -> str | None:
    """The slug of the article the requester closed the ticket with, if they did."""
    for event in reversed(ticket.events):
        if event.kind == "self_solved":
            return event.data.get("article", "")
    return None


def _solved_outcome(ticket: Ticket, status: int):
    """The page for a ticket that is no longer open: closed by this kind of link, or resolved/closed."""
    slug = _self_solved_by(ticket)
    return render_template("mail_links/solved_done.html", ticket=ticket, title=_article_title(slug) if slug else "",
                           by_link=slug is not None, status_text=status_label(ticket.status).lower()), status


@bp.get("/solved/<token>")
def solved(token: str):
    """What the link will do, and the button that does it (or why it is done already)."""
    target = read_solved_token(get_session(), token)
    if not target.ticket.is_open:
        return _solved_outcome(target.ticket, 200)
    return render_template("mail_links/solved_confirm.html", ticket=target.ticket,
                           title=_article_title(target.article_slug))


@bp.post("/solved/<token>")
def solved_confirmed(token: str):
    """Close the ticket as solved by the article and count the deflection by e-mail (once)."""
    session = get_session()
    target = read_solved_token(session, token)
    try:
        ticket_service.close_as_self_solved(session, target.ticket, target.article_slug,
                                            _article_title(target.article_slug))
        record_solved(session, target.ticket, target.article_slug)
        session.commit()
    except (DomainError, StaleDataError):  # no longer open, or closed by a second click at the same moment
        session.rollback()
        return _solved_outcome(session.get(Ticket, target.ticket.id, populate_existing=True), 409)
    return _solved_outcome(target.ticket, 200)


def _rating_page(ticket: Ticket, rating, comment: str = "", error: str = "", status: int = 200):
    """The survey form with the rating preselected, or the page saying it was rated or cannot be yet."""
    if ticket.survey is not None:
        return render_template("mail_links/rated.html", ticket=ticket), 409 if status != 200 else 200
    return render_template("mail_links/rate.html", ticket=ticket, rating=parse_int(rating, low=1, high=5),
                           comment=comment, error=error,
                           can_rate=ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)), status


@bp.get("/rate/<token>")
def rate(token: str):
    """The rating the link chose, preselected, with room for a comment and the button that sends it."""
    return _rating_page(read_rating_token(get_session(), token).ticket, request.args.get("rating"))


@bp.post("/rate/<token>")
def rate_confirmed(token: str):
    """Record the requester's rating and comment (once per ticket, by the survey's rules)."""
    session = get_session()
    ticket = read_rating_token(session, token).ticket
    rating, comment = request.form.get("rating"), request.form.get("comment", "")
    try:
        ticket_service.submit_survey(session, ticket, ticket.requester, rating, comment)
        session.commit()
    except DomainError as exc:
        session.rollback()
        ticket = session.get(Ticket, ticket.id, populate_existing=True)
        return _rating_page(ticket, rating, comment, translated(exc), exc.status)
    return render_template("mail_links/rated.html", ticket=ticket, thanks=True)
