"""The customer's side: "Close my ticket, it is fixed" (closed by the requester, never counted as the desk's
resolution), and "Ask for help" from a search result page and from an article, carrying the question."""

import html
import re
from datetime import timedelta
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import select

from portal.db import get_session
from portal.domain import tickets as svc
from portal.domain.errors import Invalid, NotAllowed
from portal.domain.models import Article, Role, Ticket, TicketStatus, utcnow
from portal.domain.reports import build_report, first_response_compliance
from tests.conftest import AuthActions, csrf_token_from, user_by_role

EN = {"Accept-Language": "en"}


def new_ticket(app, hours_ago=0):
    """A customer's open ticket, its id."""
    with app.app_context():
        session = get_session()
        ticket = svc.create_ticket(session, user_by_role(session, Role.CUSTOMER), "VPN drops", "It drops.", "vpn",
                                   3, 3, app.extensions["mesa_sla"], now=utcnow() - timedelta(hours=hours_ago))
        session.commit()
        return ticket.id


def signed_in(app, role):
    client = app.test_client()
    AuthActions(client).login(role)
    return client


def close_from_the_page(client, ticket_id):
    """Press the close button on the ticket page (with its form's CSRF token)."""
    page = client.get(f"/tickets/{ticket_id}", headers=EN).text
    assert "Close my ticket, it is fixed" in page
    token = csrf_token_from(page[page.index('class="close-fixed"') - 200:])
    return client.post(f"/tickets/{ticket_id}/close", data={"csrf_token": token}, headers=EN)


# ----- domain -----------------------------------------------------------------------------------------------


def test_the_requester_closes_without_a_solution_or_resolution_time(db, seeded_app):
    ticket = db.get(Ticket, new_ticket(seeded_app))
    event = svc.close_by_requester(db, ticket, ticket.requester)
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_at is not None
    assert ticket.resolved_at is None and not ticket.solution
    assert (event.kind, event.public, event.actor_id, event.data["from"]) == \
        ("closed_by_requester", True, ticket.requester_id, "new")
    with pytest.raises(Invalid, match="already resolved or closed"):
        svc.close_by_requester(db, ticket, ticket.requester)


def test_only_the_requester_may_close_it_as_fixed(db, seeded_app):
    ticket = db.get(Ticket, new_ticket(seeded_app))
    with pytest.raises(NotAllowed):
        svc.close_by_requester(db, ticket, user_by_role(db, Role.AGENT_L1))
    assert ticket.status == TicketStatus.NEW


def test_a_ticket_closed_by_its_requester_is_not_counted_as_resolved_by_the_desk(db, seeded_app):
    now = utcnow()
    ticket = db.get(Ticket, new_ticket(seeded_app, hours_ago=30))  # its response target long past
    svc.close_by_requester(db, ticket, ticket.requester, now=now - timedelta(hours=29))
    db.commit()
    report = build_report(db, days=30, now=now)
    assert report.tickets_resolved == 0 and report.resolution_met is None
    assert first_response_compliance(db, now - timedelta(days=30), now) == (0, 0, 0)  # closed before its target


# ----- pages ------------------------------------------------------------------------------------------------


def test_the_requester_closes_their_open_ticket_from_its_page(seeded_app):
    ticket_id = new_ticket(seeded_app)
    client = signed_in(seeded_app, Role.CUSTOMER)
    response = close_from_the_page(client, ticket_id)
    assert response.status_code == 302
    page = client.get(f"/tickets/{ticket_id}", headers=EN).text
    assert "Thank you for telling us it is fixed" in page
    assert "closed the ticket: it is fixed (closed by the requester)" in page
    assert "Close my ticket, it is fixed" not in page  # not offered on a closed ticket
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert ticket.status == TicketStatus.CLOSED and ticket.resolved_at is None


def test_closing_again_says_why_nothing_changed_and_agents_are_refused(seeded_app):
    ticket_id = new_ticket(seeded_app)
    client = signed_in(seeded_app, Role.CUSTOMER)
    token = csrf_token_from(client.get(f"/tickets/{ticket_id}", headers=EN).text)
    assert client.post(f"/tickets/{ticket_id}/close", data={"csrf_token": token}).status_code == 302
    again = client.post(f"/tickets/{ticket_id}/close", data={"csrf_token": token}, headers=EN)
    assert again.status_code == 409 and "is already resolved or closed: nothing was changed" in again.text
    assert client.post(f"/tickets/{ticket_id}/close").status_code == 400  # no CSRF token
    agent = signed_in(seeded_app, Role.AGENT_L1)
    other = new_ticket(seeded_app)
    token = csrf_token_from(agent.get(f"/tickets/{other}", headers=EN).text)
    assert agent.post(f"/tickets/{other}/close", data={"csrf_token": token}).status_code == 403
    assert "Close my ticket, it is fixed" not in agent.get(f"/tickets/{other}", headers=EN).text


def test_a_resolved_ticket_offers_the_rating_not_the_close_button(seeded_app):
    ticket_id = new_ticket(seeded_app)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        svc.resolve(session, ticket, user_by_role(session, Role.AGENT_L2), "Reinstall the client.", ticket.version)
        session.commit()
    page = signed_in(seeded_app, Role.CUSTOMER).get(f"/tickets/{ticket_id}", headers=EN).text
    assert "Close my ticket, it is fixed" not in page and 'id="survey"' in page


def test_ask_for_help_from_a_search_and_from_an_article_carries_the_question(seeded_app):
    client = signed_in(seeded_app, Role.CUSTOMER)
    results = client.get("/search?q=printer+jammed", headers=EN).text
    assert 'href="/help?q=printer+jammed"' in results
    with seeded_app.app_context():
        article = get_session().scalar(select(Article).where(Article.slug == "laptop-disk-full"))
        title = article.title
    page = client.get("/articles/laptop-disk-full", headers=EN).text
    [link] = re.findall(r'class="ask-instead">[^<]*<a href="(/help\?q=[^"]+)"', page)
    assert unquote_plus(html.unescape(link).split("q=", 1)[1]) == title
    form = client.get("/help", query_string={"q": title}, headers=EN).text
    assert f'value="{title}"' in form  # the article's title in the subject
