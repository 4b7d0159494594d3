"""The one-click links of the e-mails to requesters: "This solved my problem" under each article an
acknowledgement offers, and a satisfaction rating for a resolved ticket.

A link carries the ticket, the requester and (for a deflection) the article, signed with the secret key
(itsdangerous, each kind with its own salt so one cannot stand for the other) and timestamped: it cannot be
forged and expires after MESA_MAIL_LINK_DAYS. It needs no sign-in: whoever holds the mail may use it, as
with a verification link. Following it (GET) only shows a page whose button POSTs; nothing changes on GET,
so a mail scanner that prefetches links changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy.orm import Session

from . import signed_links
from .domain.errors import N_, DomainError
from .domain.models import Ticket

SOLVED_SALT = "mesa-mail-solved"
RATE_SALT = "mesa-mail-rate"
RATINGS = (5, 4, 3, 2, 1)  # the order the rating links are listed in


class LinkInvalid(DomainError):
    """A link that was not made by Mesa, was cut short, or no longer matches its ticket."""

    status = 400


class LinkExpired(DomainError):
    """A link older than MESA_MAIL_LINK_DAYS."""

    status = 410


@dataclass(frozen=True)
class LinkTarget:
    """What a valid link stands for: its ticket and, for "This solved my problem", the article's slug."""

    ticket: Ticket
    article_slug: str = ""


def portal_url(path: str) -> str:
    """An absolute address on the portal, for a link in an e-mail (sent outside any request)."""
    return f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}{path}"


def solved_token(ticket: Ticket, article_slug: str) -> str:
    """The signed token of a "This solved my problem" link."""
    return signed_links.make_token(SOLVED_SALT, {"t": ticket.id, "r": ticket.requester_id, "a": article_slug})


def rating_token(ticket: Ticket) -> str:
    """The signed token of the ticket's satisfaction links (one for every rating)."""
    return signed_links.make_token(RATE_SALT, {"t": ticket.id, "r": ticket.requester_id})


def solved_link(ticket: Ticket, article_slug: str) -> str:
    """The "This solved my problem" address for one article offered for the ticket."""
    return portal_url(f"/mail/solved/{solved_token(ticket, article_slug)}")


def rating_link(ticket: Ticket, rating: int) -> str:
    """The satisfaction address for the ticket with ``rating`` (1-5) preselected on its page."""
    return portal_url(f"/mail/rate/{rating_token(ticket)}?rating={rating}")


def _read(session: Session, token: str, salt: str) -> tuple[Ticket, dict]:
    """The ticket a valid, unexpired token of this kind names, and the token's data; LinkInvalid or
    LinkExpired with a clear message otherwise."""
    days = current_app.config["MESA_MAIL_LINK_DAYS"]
    data = signed_links.read_token(
        salt, token, days * 86400,
        expired=LinkExpired(N_("This link has expired: links in our e-mails work for %(days)d days. Sign in to "
                               "see your ticket."), days=days),
        invalid=LinkInvalid(N_("This link is not valid. Check that you opened all of it, or sign in to see your "
                               "ticket.")))
    ticket_id = data.get("t")
    ticket = session.get(Ticket, ticket_id) if isinstance(ticket_id, int) else None
    if ticket is None or ticket.requester_id != data.get("r"):
        raise LinkInvalid(N_("This link does not lead to a ticket any more."))
    return ticket, data


def read_solved_token(session: Session, token: str) -> LinkTarget:
    """The ticket and article of a "This solved my problem" link."""
    ticket, data = _read(session, token, SOLVED_SALT)
    slug = data.get("a")
    if not isinstance(slug, str) or not slug:
        raise LinkInvalid(N_("This link is not valid. Check that you opened all of it, or sign in to see your "
                             "ticket."))
    return LinkTarget(ticket, slug)


def read_rating_token(session: Session, token: str) -> LinkTarget:
    """The ticket of a satisfaction link."""
    return LinkTarget(_read(session, token, RATE_SALT)[0])
