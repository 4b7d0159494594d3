"""The deflection flow and the service desk through the web pages."""

import re

import pytest
from sqlalchemy import func, select, update

from portal.db import get_session
from portal.domain.models import (Article, CannedReply, InboundMail, MailDisposition, OutboxMessage, OutboxStatus,
                                  PortalEvent, Role, Team, Ticket, TicketStatus, TicketSuggestion, TimeEntry, User,
                                  utcnow)
from tests.conftest import AuthActions, csrf_token_from

EN = {"Accept-Language": "en"}
REQUEST = {"subject": "Printer queue stuck", "description": "My print job is stuck in the queue and nothing prints.",
           "category": "printers", "type": "incident", "impact": "3", "urgency": "2", "asset_tag": "LT-0042"}


def count(app, model, *where):
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model).where(*where))


def events_of(app, kind):
    with app.app_context():
        return list(get_session().scalars(select(PortalEvent).where(PortalEvent.kind == kind)))


def post_form(client, url, data, page_url=None, **kwargs):
    page = client.get(page_url or url, headers=EN)
    return client.post(url, data={**data, "csrf_token": csrf_token_from(page.text)}, headers=EN, **kwargs)


def create_ticket(client, data=REQUEST):
    checked = post_form(client, "/help", {**data, "action": "check"})
    shown = re.findall(r'name="shown" value="([^"]+)"', checked.text)
    response = client.post("/help", data={**data, "action": "submit", "shown": shown,
                                          "csrf_token": csrf_token_from(checked.text)}, headers=EN)
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1]), shown


def test_asking_for_help_requires_signing_in(client):
    response = client.get("/help")
    assert response.status_code == 302 and "/login?next=/help" in response.headers["Location"]


def test_check_for_answers_suggests_at_most_five_articles_without_javascript(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    page = post_form(client, "/help", {**REQUEST, "action": "check"})
    assert page.status_code == 200
    suggestions = re.findall(r'<li class="suggestion" data-slug="([^"]+)"', page.text)
    assert 1 <= len(suggestions) <= 5
    assert "print-queue-stuck" in suggestions
    assert "This solved my problem" in page.text and "I still need help" in page.text
    assert len(events_of(seeded_app, "suggestion_shown")) == len(suggestions)
    assert count(seeded_app, Ticket) == 0


def test_solved_records_a_deflection_and_creates_no_ticket(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    checked = post_form(client, "/help", {**REQUEST, "action": "check"})
    response = client.post("/help/solved", data={**REQUEST, "article": "print-queue-stuck",
                                                  "query": "Printer queue stuck. My print job",
                                                  "csrf_token": csrf_token_from(checked.text)}, headers=EN)
    assert response.status_code == 200 and "No ticket was created" in response.text
    assert count(seeded_app, Ticket) == 0
    solved = events_of(seeded_app, "solved")
    assert [(e.article_slug, e.query) for e in solved] == [("print-queue-stuck", "Printer queue stuck. My print job")]
    assert solved[0].session_id and solved[0].user_id



@pytest.mark.parametrize("role, slug, status", [
    (Role.CUSTOMER, "unlock-account-active-directory-l2", 404),  # internal
    (Role.CUSTOMER, "buzon-de-voz-movil", 404),  # draft
    (Role.CUSTOMER, "no-such-article", 404),
    (Role.AGENT_L1, "buzon-de-voz-movil", 404),  # agents read drafts, but a draft solves nothing
    (Role.AGENT_L1, "unlock-account-active-directory-l2", 200),  # internal and published: agents may read it
])
def test_only_published_articles_the_user_may_read_can_be_marked_as_solving(client, auth, seeded_app, role, slug,
                                                                            status):
    auth.login(role)
    response = post_form(client, "/help/solved", {"article": slug, "query": "my account is locked"},
                         page_url="/help")
    assert response.status_code == status
    solved = events_of(seeded_app, "solved")
    if status == 404:
        assert solved == []
        for title in ("Unlock an account in Active Directory", "Configurar y escuchar el buzón de voz"):
            assert title not in response.text
    else:
        assert [e.article_slug for e in solved] == [slug]


def test_a_ticket_keeps_only_the_suggestions_the_customer_may_read(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    page = client.get("/help", headers=EN)
    response = client.post("/help", headers=EN, data={
        **REQUEST, "action": "submit", "csrf_token": csrf_token_from(page.text),
        "shown": ["print-queue-stuck", "unlock-account-active-directory-l2", "buzon-de-voz-movil"]})
    assert response.status_code == 302
    with seeded_app.app_context():
        kept = get_session().scalars(select(TicketSuggestion.article_slug)).all()
    assert kept == ["print-queue-stuck"]


def test_still_need_help_creates_the_ticket_with_what_the_customer_saw(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ticket_id, shown = create_ticket(client)
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    assert f"Ticket #{ticket_id} created" in page.text
    assert "You can expect a first answer within" in page.text
    assert "First answer expected by" in page.text
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert ticket.asset_tag == "LT-0042" and ticket.priority == 4 and ticket.lang == "en"
        assert [s.article_slug for s in sorted(ticket.suggestions, key=lambda s: s.rank)] == shown
    assert len(events_of(seeded_app, "ticket_created")) == 1
    assert count(seeded_app, OutboxMessage, OutboxMessage.subject.contains(f"#{ticket_id}"),
                 OutboxMessage.recipient == "customer@example.com") == 1  # (and the assignee's own mail)


def test_suggest_api_returns_at_most_five_and_records_them(client, seeded_app):
    response = client.get("/api/suggest?q=my+print+job+is+stuck+in+the+queue")
    assert response.status_code == 200
    results = response.json["results"]
    assert 1 <= len(results) <= 5 and "print-queue-stuck" in [r["slug"] for r in results]
    assert len(events_of(seeded_app, "suggestion_shown")) == len(results)
    assert client.get("/api/suggest?q=ab").json["results"] == []
    too_long = client.get("/api/suggest?q=" + "x" * 501, headers=EN)
    assert too_long.status_code == 400 and "too long" in too_long.json["error"]



def test_a_subject_with_a_line_break_is_refused_with_a_form_error(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    response = post_form(client, "/help", {**REQUEST, "subject": "Printer\nBcc: x@evil.com", "action": "submit"})
    assert response.status_code == 400 and "Write this on one line" in response.text
    assert count(seeded_app, Ticket) == 0 and count(seeded_app, OutboxMessage) == 0


def test_agent_sees_the_ticket_in_the_queue_with_the_suggested_articles(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ticket_id, shown = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    queue = client.get("/desk/", headers=EN)
    assert f'data-ticket="{ticket_id}"' in queue.text
    assert "/articles/print-queue-stuck" in queue.text
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    assert "Articles the customer already saw" in page.text and "/articles/print-queue-stuck" in page.text
    assert "Matching articles" in page.text and "Insert link" in page.text


def agent_post(client, ticket_id, action, data):
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    return client.post(f"/tickets/{ticket_id}/{action}", headers=EN,
                       data={**data, "version": version, "csrf_token": csrf_token_from(page.text)})


def test_agent_works_the_ticket_and_the_customer_sees_only_public_activity(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    assert agent_post(client, ticket_id, "reply", {"body": "Secret: printer firmware bug", "visibility": "internal"}).status_code == 302
    assert agent_post(client, ticket_id, "reply", {"body": "Please restart the spooler", "visibility": "public"}).status_code == 302
    assert agent_post(client, ticket_id, "time", {"minutes": "20", "note": "remote"}).status_code == 302
    assert agent_post(client, ticket_id, "escalate", {"reason": "Needs print server access"}).status_code == 302
    auth.logout()
    auth.login(Role.AGENT_L2)
    assert agent_post(client, ticket_id, "resolve", {"solution": "Cleared the print server queue."}).status_code == 302
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    assert "Secret: printer firmware bug" in page.text and "20 min" in page.text and "L2" in page.text
    auth.logout()
    auth.login(Role.CUSTOMER)
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    assert "Please restart the spooler" in page.text and "Cleared the print server queue." in page.text
    assert "Secret: printer firmware bug" not in page.text and "Needs print server access" not in page.text
    assert "How did we do?" in page.text
    with seeded_app.app_context():
        bodies = " ".join(m.body for m in get_session().scalars(select(OutboxMessage)))
    assert "Please restart the spooler" in bodies and "Secret" not in bodies and "/mail/rate/" in bodies
    rate = post_form(client, f"/tickets/{ticket_id}/survey", {"rating": "5", "comment": "great"},
                     page_url=f"/tickets/{ticket_id}")
    assert rate.status_code == 302
    again = post_form(client, f"/tickets/{ticket_id}/survey", {"rating": "1"}, page_url=f"/tickets/{ticket_id}")
    assert again.status_code == 400 and "already rated" in again.text


def test_resolving_without_a_solution_keeps_the_page_with_a_message(client, auth):
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    response = agent_post(client, ticket_id, "resolve", {"solution": "   "})
    assert response.status_code == 400 and "The solution is required" in response.text


def test_two_agents_editing_one_ticket_get_a_clear_conflict(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    stale_version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    token = csrf_token_from(page.text)
    other = seeded_app.test_client()
    AuthActions(other).login(Role.AGENT_L2)
    assert agent_post(other, ticket_id, "priority", {"impact": "1", "urgency": "1"}).status_code == 302
    response = client.post(f"/tickets/{ticket_id}/resolve", headers=EN, data={
        "solution": "My careful solution text", "version": stale_version, "csrf_token": token})
    assert response.status_code == 409
    assert "was changed by" in response.text and "My careful solution text" in response.text
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        assert ticket.status != TicketStatus.RESOLVED and ticket.priority == 1



def bump_version_from_another_connection(app, model, row_id):
    """Another worker saves the row: its version moves on without this request's session knowing."""
    with app.extensions["mesa_engine"].begin() as connection:
        connection.execute(update(model).where(model.id == row_id).values(version=model.version + 1))


def test_a_save_that_races_another_agent_gets_the_conflict_page_with_the_text_kept(client, auth, seeded_app,
                                                                                   monkeypatch):
    from portal.domain import tickets as svc

    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    resolve = svc.resolve

    def resolve_while_another_agent_saves(session, ticket, *args, **kwargs):
        bump_version_from_another_connection(seeded_app, Ticket, ticket.id)
        return resolve(session, ticket, *args, **kwargs)

    monkeypatch.setattr(svc, "resolve", resolve_while_another_agent_saves)
    response = agent_post(client, ticket_id, "resolve", {"solution": "My careful solution text"})
    assert response.status_code == 409, response.text
    assert "was changed by" in response.text and "My careful solution text" in response.text
    assert "Agent L1" in response.text  # the whole page, with the signed-in agent, not a bare error
    with seeded_app.app_context():
        assert get_session().get(Ticket, ticket_id).status != TicketStatus.RESOLVED


def test_a_database_error_while_saving_gives_the_error_page(client, auth, seeded_app, monkeypatch):
    from portal.domain import tickets as svc

    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    change_status = svc.change_status

    def change_status_breaking_a_constraint(session, ticket, *args, **kwargs):
        event = change_status(session, ticket, *args, **kwargs)
        ticket.subject = None  # NOT NULL: the commit fails in the database
        return event

    monkeypatch.setattr(svc, "change_status", change_status_breaking_a_constraint)
    response = agent_post(client, ticket_id, "status", {"status": "pending_customer"})
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text and "Agent L1" in response.text
    assert client.get(f"/tickets/{ticket_id}", headers=EN).status_code == 200


def test_canned_reply_fills_placeholders(client, auth, seeded_app):
    with seeded_app.app_context():
        get_session().add(CannedReply(title="Hi", body="Hello {requester_name}, about {ticket_number}. {agent_name}"))
        get_session().commit()
        canned_id = get_session().scalar(select(CannedReply.id))
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    agent_post(client, ticket_id, "reply", {"body": "", "canned": str(canned_id), "visibility": "public"})
    page = client.get(f"/tickets/{ticket_id}", headers=EN)
    assert f"Hello Customer, about #{ticket_id}. Agent L1" in page.text


def test_admin_manages_canned_replies_and_teams(client, auth, seeded_app):
    auth.login(Role.ADMIN)
    created = post_form(client, "/admin/canned", {"title": "Reboot", "body": "Please reboot, {requester_name}."})
    assert created.status_code == 302
    duplicate = post_form(client, "/admin/canned", {"title": "Reboot", "body": "x"})
    assert duplicate.status_code == 400 and "exists already" in duplicate.text
    team = post_form(client, "/admin/teams", {"name": "Network", "categories": ["vpn", "wifi"]})
    assert team.status_code == 302
    assert "VPN and remote access" in client.get("/admin/teams", headers=EN).text


# Every route x every role -> expected status. 302 for anonymous visitors = sent to sign in; for signed-in
# users a redirect after a change or to their own pages. Placeholders are filled with the ids of the
# records permission_fixtures() creates; every route of the app must be here (see the test after).
ANYONE = (200, 200, 200, 200, 200)
SIGNED_IN = (302, 200, 200, 200, 200)
AGENTS = (302, 403, 200, 200, 200)
ADMINS = (302, 403, 403, 403, 200)
AGENT_CHANGES = (302, 403, 302, 302, 302)
PUBLISHER_CHANGES = (302, 403, 403, 302, 302)
ADMIN_CHANGES = (302, 403, 403, 403, 302)
PUBLISHED, INTERNAL, DRAFT = "laptop-disk-full", "unlock-account-active-directory-l2", "docking-station-external-monitor"
ARTICLE = {"title": "My laptop disk is full", "body": "## Steps\n\nEmpty the bin.\n", "lang": "en",
           "category": "hardware", "visibility": "public"}
# The JSON API (/api/v1): signed in by the session here (JSON bodies, the CSRF token in X-CSRFToken); 401 for
# anonymous callers. tests/test_api_v1.py runs the same rows again with API tokens.
API_READ = (401, 200, 200, 200, 200)
API_AGENTS = (401, 403, 200, 200, 200)
API_ROUTES = [
    ("GET", "/api/v1/search?q=vpn", {}, ANYONE),
    ("GET", "/api/v1/suggest?q=vpn+client", {}, ANYONE),
    ("GET", "/api/v1/me", {}, API_READ),
    ("GET", "/api/v1/articles", {}, ANYONE),
    ("GET", f"/api/v1/articles/{PUBLISHED}", {}, ANYONE),
    ("GET", f"/api/v1/articles/{INTERNAL}", {}, (404, 404, 200, 200, 200)),
    ("GET", f"/api/v1/articles/{DRAFT}", {}, (404, 404, 200, 200, 200)),
    ("POST", "/api/v1/articles", {**ARTICLE, "title": "Reset a badge reader"}, (401, 403, 201, 201, 201)),
    ("POST", "/api/v1/articles", {**ARTICLE, "title": "Reset a badge reader", "ticket_id": "{resolved}"},
     (401, 403, 403, 201, 201)),
    ("PUT", f"/api/v1/articles/{DRAFT}", {**ARTICLE, "version": "{draft_version}"}, API_AGENTS),
    ("PUT", f"/api/v1/articles/{PUBLISHED}", {**ARTICLE, "version": "{published_version}"},
     (401, 403, 403, 200, 200)),
    ("POST", f"/api/v1/articles/{DRAFT}/state", {"action": "submit", "version": "{draft_version}"}, API_AGENTS),
    ("POST", f"/api/v1/articles/{PUBLISHED}/state", {"action": "archive", "version": "{published_version}"},
     (401, 403, 403, 200, 200)),
    ("GET", "/api/v1/tickets", {}, API_READ),
    ("POST", "/api/v1/tickets", {"subject": "Printer", "description": "It jams."}, (401, 201, 201, 201, 201)),
    ("GET", "/api/v1/tickets/{ticket}", {}, API_READ),
    ("GET", "/api/v1/tickets/{other_ticket}", {}, (401, 404, 200, 200, 200)),
    ("POST", "/api/v1/tickets/{ticket}/replies", {"body": "hello", "version": "{ticket_version}"}, API_READ),
    ("POST", "/api/v1/tickets/{other_ticket}/replies", {"body": "hello", "version": "{other_version}"},
     (401, 404, 200, 200, 200)),
    ("POST", "/api/v1/tickets/{ticket}/notes", {"body": "internal", "version": "{ticket_version}"}, API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/assign", {"assignee_id": "{l2}", "version": "{ticket_version}"}, API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/status", {"status": "pending_customer", "version": "{ticket_version}"},
     API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/priority", {"impact": 1, "urgency": 1, "version": "{ticket_version}"},
     API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/escalate", {"reason": "needs L2", "version": "{ticket_version}"},
     API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/time", {"minutes": 5, "version": "{ticket_version}"}, API_AGENTS),
    ("POST", "/api/v1/tickets/{ticket}/resolve", {"solution": "done", "version": "{ticket_version}"}, API_AGENTS),
    ("GET", "/api/v1/reports?days=7", {}, API_AGENTS),
    ("GET", "/api/v1/reports/trends?days=30&by=day", {}, API_AGENTS),
    ("GET", "/api/v1/reports/breakdowns?days=30", {}, API_AGENTS),
    ("GET", "/api/v1/reports/gaps?days=30", {}, API_AGENTS),
]
API_NUMBERS = {"version", "ticket_id", "assignee_id"}


def api_body(data: dict, ids: dict) -> dict:
    """A table row's data as the JSON body: placeholders filled, ids and versions as numbers."""
    body = {key: value.format(**ids) if isinstance(value, str) else value for key, value in data.items()}
    return {key: int(value) if key in API_NUMBERS else value for key, value in body.items()}


ROUTES = [
    ("GET", "/", {}, ANYONE),
    ("GET", "/search?q=vpn", {}, ANYONE),
    ("GET", "/categories/vpn", {}, ANYONE),
    ("GET", f"/articles/{PUBLISHED}", {}, ANYONE),
    ("GET", f"/articles/{INTERNAL}", {}, (404, 404, 200, 200, 200)),
    ("GET", f"/articles/{DRAFT}", {}, (404, 404, 200, 200, 200)),
    ("POST", f"/articles/{PUBLISHED}/feedback", {"helpful": "yes"}, (303, 303, 303, 303, 303)),
    ("POST", f"/articles/{INTERNAL}/feedback", {"helpful": "yes"}, (404, 404, 303, 303, 303)),
    ("GET", "/language/en", {}, (302, 302, 302, 302, 302)),
    ("GET", "/api/search?q=vpn", {}, ANYONE),
    ("GET", "/api/suggest?q=vpn+client", {}, ANYONE),
    ("GET", "/login", {}, (200, 302, 302, 302, 302)),
    ("POST", "/login", {"email": "customer@example.com", "password": "wrong password"}, (401, 302, 302, 302, 302)),
    ("POST", "/logout", {}, (302, 302, 302, 302, 302)),
    ("GET", "/register", {}, (200, 302, 302, 302, 302)),
    ("POST", "/register", {"name": "N", "email": "n@example.com", "password": "a long password", "confirm": "x"},
     (400, 302, 302, 302, 302)),
    ("GET", "/verify/{verify_token}", {}, ANYONE),
    ("POST", "/verify/{verify_token}", {}, (302, 302, 302, 302, 302)),
    ("POST", "/account/verification", {}, (302, 302, 302, 302, 302)),
    ("GET", "/mail/solved/{solved_token}", {}, ANYONE),  # one-click links of e-mails: the signed token is the key
    ("POST", "/mail/solved/{solved_token}", {}, ANYONE),
    ("GET", "/mail/rate/{rating_token}?rating=4", {}, ANYONE),
    ("POST", "/mail/rate/{rating_token}", {"rating": "4"}, ANYONE),
    ("GET", "/help", {}, SIGNED_IN),
    ("POST", "/help", {**REQUEST, "action": "check"}, SIGNED_IN),
    ("POST", "/help/solved", {"article": "print-queue-stuck"}, SIGNED_IN),
    ("POST", "/help/solved", {"article": INTERNAL}, (302, 404, 200, 200, 200)),
    ("POST", "/help/solved", {"article": DRAFT}, (302, 404, 404, 404, 404)),
    ("GET", "/tickets", {}, (302, 200, 302, 302, 302)),
    ("GET", "/tickets/{ticket}", {}, SIGNED_IN),
    ("GET", "/tickets/{other_ticket}", {}, (302, 404, 200, 200, 200)),
    ("POST", "/tickets/{ticket}/reply", {"body": "hello", "visibility": "public", "version": "{ticket_version}"},
     (302, 302, 302, 302, 302)),
    ("POST", "/tickets/{other_ticket}/reply", {"body": "hello", "version": "{other_version}"},
     (302, 404, 302, 302, 302)),
    ("POST", "/tickets/{resolved}/survey", {"rating": "4"}, (302, 302, 403, 403, 403)),
    ("POST", "/tickets/{ticket}/close", {}, (302, 302, 403, 403, 403)),
    ("POST", "/tickets/{other_ticket}/close", {}, (302, 404, 403, 403, 403)),
    ("POST", "/tickets/{other_ticket}/survey", {"rating": "4"}, (302, 404, 403, 403, 403)),
    ("POST", "/tickets/{ticket}/assign", {"assignee": "{l2}", "version": "{ticket_version}"}, AGENT_CHANGES),
    ("POST", "/tickets/{ticket}/status", {"status": "pending_customer", "version": "{ticket_version}"},
     AGENT_CHANGES),
    ("POST", "/tickets/{ticket}/priority", {"impact": "1", "urgency": "1", "version": "{ticket_version}"},
     AGENT_CHANGES),
    ("POST", "/tickets/{ticket}/escalate", {"reason": "needs L2", "version": "{ticket_version}"}, AGENT_CHANGES),
    ("POST", "/tickets/{ticket}/resolve", {"solution": "done", "version": "{ticket_version}"}, AGENT_CHANGES),
    ("POST", "/tickets/{ticket}/time", {"minutes": "5", "version": "{ticket_version}"}, AGENT_CHANGES),
    ("GET", "/desk/", {}, AGENTS),
    ("GET", "/reports/", {}, AGENTS),
    ("GET", "/reports/trends/?days=30&by=day", {}, AGENTS),
    ("GET", "/reports/trends/volume.csv?days=30", {}, AGENTS),
    ("GET", "/reports/gaps/?days=30", {}, AGENTS),
    ("GET", "/reports/gaps/draft?ticket={resolved}", {}, AGENTS),
    ("GET", "/kb/", {}, AGENTS),
    ("GET", "/kb/new", {}, AGENTS),
    ("POST", "/kb/new", {**ARTICLE, "title": "Reset a badge reader", "confirm_new": "1"}, AGENT_CHANGES),
    ("POST", "/kb/new", {**ARTICLE, "title": "Reset a badge reader", "confirm_new": "1", "ticket_id": "{resolved}"},
     PUBLISHER_CHANGES),
    ("POST", "/kb/preview", {"body": "## Hi"}, AGENTS),
    ("POST", "/kb/duplicates", {"title": "VPN", "body": "It drops.", "ticket_id": "{resolved}"}, AGENTS),
    ("GET", "/kb/from-ticket/{resolved}", {}, (302, 403, 403, 200, 200)),
    ("POST", f"/kb/articles/{PUBLISHED}/append", {"ticket_id": "{resolved}"}, PUBLISHER_CHANGES),
    ("GET", f"/kb/articles/{DRAFT}/edit", {}, AGENTS),
    ("GET", f"/kb/articles/{PUBLISHED}/edit", {}, (302, 403, 302, 200, 200)),  # L1: back to the article
    ("POST", f"/kb/articles/{DRAFT}/edit", {**ARTICLE, "version": "{draft_version}"}, AGENT_CHANGES),
    ("POST", f"/kb/articles/{PUBLISHED}/edit", {**ARTICLE, "version": "{published_version}"},
     AGENT_CHANGES),  # L1: refused, back to the article with a message
    ("POST", f"/kb/articles/{DRAFT}/state", {"action": "submit", "version": "{draft_version}"}, AGENT_CHANGES),
    ("POST", f"/kb/articles/{PUBLISHED}/state", {"action": "archive", "version": "{published_version}"},
     PUBLISHER_CHANGES),
    ("GET", f"/kb/articles/{PUBLISHED}/history", {}, AGENTS),
    ("POST", f"/kb/articles/{PUBLISHED}/restore", {"number": "1", "version": "{published_version}"},
     PUBLISHER_CHANGES),
    ("GET", "/admin/canned", {}, ADMINS),
    ("POST", "/admin/canned", {"title": "Reboot", "body": "Please reboot."}, ADMIN_CHANGES),
    ("GET", "/admin/canned/{canned}", {}, ADMINS),
    ("POST", "/admin/canned/{canned}", {"title": "Hello again", "body": "Hi."}, ADMIN_CHANGES),
    ("POST", "/admin/canned/{canned}/delete", {}, ADMIN_CHANGES),
    ("GET", "/admin/teams", {}, ADMINS),
    ("POST", "/admin/teams", {"name": "Network", "categories": "vpn"}, ADMIN_CHANGES),
    ("POST", "/admin/teams/members", {"agent": "{l1}", "team": "{team}"}, ADMIN_CHANGES),
    ("GET", "/admin/users?q=a&role=agent_l1&page=2", {}, ADMINS),
    ("POST", "/admin/users", {"name": "Nuria Nueva", "email": "nuria@example.com", "role": "agent_l1", "team": "{team}"},
     ADMIN_CHANGES),
    ("GET", "/admin/users/{l1}", {}, ADMINS),
    ("POST", "/admin/users/{l1}", {"role": "agent_l2", "team": "{team}"}, ADMIN_CHANGES),
    ("POST", "/admin/users/{l1}/deactivate", {}, ADMIN_CHANGES),
    ("POST", "/admin/users/{retired}/reactivate", {}, ADMIN_CHANGES),
    ("POST", "/admin/users/{l1}/password-link", {}, ADMIN_CHANGES),
    ("GET", "/admin/outbox", {}, ADMINS),
    ("POST", "/admin/outbox/{failed_mail}/retry", {}, ADMIN_CHANGES),
    ("GET", "/admin/mail", {}, ADMINS),
    ("GET", "/admin/mail/{mail}.eml", {}, ADMINS),
    ("POST", "/admin/mail/{quarantined_mail}/release", {}, ADMIN_CHANGES),
    ("POST", "/admin/mail/{quarantined_mail}/discard", {}, ADMIN_CHANGES),
    ("GET", "/tickets/{ticket}/mail/{mail}.eml", {}, SIGNED_IN),
    ("GET", "/tickets/{other_ticket}/mail/{other_mail}.eml", {}, (302, 404, 200, 200, 200)),
    ("GET", "/attachments/{attachment}", {}, SIGNED_IN),  # on the customer's own ticket
    ("GET", "/attachments/{attachment}/shot.png", {}, SIGNED_IN),
    ("GET", "/attachments/{other_attachment}/shot.png", {}, (302, 404, 200, 200, 200)),
    ("GET", "/attachments/{note_attachment}/log.txt", {}, (302, 404, 200, 200, 200)),  # an internal note's
    ("GET", "/attachments/{article_image}/shot.png", {}, ANYONE),  # of a published article
    ("GET", "/attachments/{draft_image}/shot.png", {}, (302, 404, 200, 200, 200)),
    ("GET", "/attachments/{loose_image}/shot.png", {}, (302, 404, 200, 200, 200)),  # uploaded, in no article yet
    ("POST", "/kb/images", {}, (302, 403, 400, 400, 400)),  # no file chosen: a message
    ("GET", "/healthz", {}, ANYONE),
    ("GET", "/account", {}, SIGNED_IN),
    ("POST", "/account/tokens", {"name": "My script", "scope": "read"}, SIGNED_IN),
    ("POST", "/account/tokens/{token}/revoke", {}, (302, 302, 404, 404, 404)),  # the customer's own token
    ("POST", "/account/notifications", {"assigned": "y", "language": ""}, AGENT_CHANGES),
    ("GET", "/password/forgot", {}, ANYONE),
    ("POST", "/password/forgot", {"email": "customer@example.com"}, ANYONE),
    ("GET", "/password/reset/{reset_token}", {}, ANYONE),
    ("POST", "/password/reset/{reset_token}", {"password": "a long new password", "confirm": "a long new password"},
     (302, 302, 302, 302, 302)),
    ("GET", "/api/openapi.json", {}, ANYONE),
    ("GET", "/api/reference", {}, ANYONE),
    ("GET", "/api/reference/assets/swagger-ui.css", {}, ANYONE),
    *API_ROUTES,
]
ROLES = (None, Role.CUSTOMER, Role.AGENT_L1, Role.AGENT_L2, Role.ADMIN)


def permission_fixtures(app) -> dict:
    """The records the table's placeholders name: the customer's open and resolved tickets, a stranger's
    ticket, a canned reply, a team, agents, and the articles' versions."""
    from portal.domain import api_tokens
    from portal.domain import tickets as svc
    from portal.verification import make_token
    from portal import password_reset
    from portal.mail_links import rating_token, solved_token
    from tests.conftest import user_by_role

    with app.app_context():
        session = get_session()
        policy = app.extensions["mesa_sla"]
        customer, l2 = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        mine = svc.create_ticket(session, customer, "Mine", "text", "vpn", 3, 3, policy)
        resolved = svc.create_ticket(session, customer, "VPN asks for the portal", "It asks every time.", "vpn",
                                     3, 3, policy)
        svc.resolve(session, resolved, l2, "Delete the profile and sign in again.", resolved.version)
        # Never signs in, so no (slow, on purpose) password hash is needed.
        stranger = User(email="stranger@example.com", name="Stranger", role=Role.CUSTOMER, password_hash="!",
                        email_verified_at=utcnow())
        other = svc.create_ticket(session, stranger, "Other", "text", "vpn", 3, 3, policy)
        retired = User(email="retired@example.com", name="Retired Agent", role=Role.AGENT_L1, password_hash="!",
                       active=False)
        session.add(retired)
        canned, team = CannedReply(title="Hello", body="Hello {requester_name}"), Team(name="Desk", categories=[])
        failed_mail = OutboxMessage(recipient="customer@example.com", subject="Hi", body="Hi",
                                    status=OutboxStatus.FAILED, attempts=8, last_error="SMTPDataError: 554")
        session.add_all([canned, team, failed_mail])
        session.flush()
        mails = [InboundMail(mailbox="box", uidvalidity=1, uid=uid, sender=sender, ticket_id=ticket_id,
                             disposition=disposition, raw=b"From: " + sender.encode() + b"\n\nHello\n")
                 for uid, sender, ticket_id, disposition in (
                     (1, "customer@example.com", mine.id, MailDisposition.TICKET),
                     (2, "stranger@example.com", other.id, MailDisposition.TICKET),
                     (3, "nobody@example.com", None, MailDisposition.QUARANTINED))]
        session.add_all(mails)
        files = permission_attachments(app, session, mine, other, l2)
        token, _secret = api_tokens.create_token(session, customer, "script", "read")
        session.commit()
        versions = dict(session.execute(select(Article.slug, Article.version)
                                        .where(Article.slug.in_([PUBLISHED, DRAFT]))).all())
        return {"ticket": mine.id, "ticket_version": mine.version, "other_ticket": other.id,
                "other_version": other.version, "resolved": resolved.id, "canned": canned.id, "team": team.id,
                "failed_mail": failed_mail.id, "mail": mails[0].id, "other_mail": mails[1].id,
                "quarantined_mail": mails[2].id, "token": token.id,
                "verify_token": make_token(customer),
                "solved_token": solved_token(mine, PUBLISHED), "rating_token": rating_token(resolved),
                "reset_token": password_reset.make_token(customer),
                "l1": user_by_role(session, Role.AGENT_L1).id, "l2": l2.id, "retired": retired.id,
                "published_version": versions[PUBLISHED], "draft_version": versions[DRAFT], **files}


def permission_attachments(app, session, mine, other, agent) -> dict:
    """A screenshot on the customer's ticket and on a stranger's, a log on an internal note, images of a
    published and of a draft article, and an editor's upload in no article yet: their ids."""
    from portal.domain import attachments as files
    from portal.domain import tickets as svc
    from tests.sample_files import png

    settings = app.extensions["mesa_attachments"]
    shot = files.check_file(files.Upload("shot.png", png()), settings)
    log = files.check_file(files.Upload("log.txt", b"error 42\n"), settings)
    note = svc.add_reply(session, mine, agent, "internal: see the log", False, mine.version)
    articles = {a.slug: a for a in session.scalars(select(Article).where(Article.slug.in_([PUBLISHED, DRAFT])))}
    return {"attachment": files.save(session, settings, shot, mine.requester, ticket=mine, event=mine.events[0]).id,
            "other_attachment": files.save(session, settings, shot, other.requester, ticket=other,
                                           event=other.events[0]).id,
            "note_attachment": files.save(session, settings, log, agent, ticket=mine, event=note).id,
            "article_image": files.save(session, settings, shot, agent, article=articles[PUBLISHED]).id,
            "draft_image": files.save(session, settings, shot, agent, article=articles[DRAFT]).id,
            "loose_image": files.save(session, settings, shot, agent).id}


@pytest.mark.parametrize("method, path, data, expected", ROUTES,
                         ids=[f"{m} {p} {d.get('article', '')}{'from ticket' if 'ticket_id' in d else ''}".strip()
                              for m, p, d, _ in ROUTES])
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=["anonymous", "customer", "l1", "l2", "admin"])
def test_permission_table(seeded_app, method, path, data, expected, role_index):
    ids = permission_fixtures(seeded_app)
    client = seeded_app.test_client()
    role = ROLES[role_index]
    AuthActions(client).login(role)
    url = path.format(**ids)
    if method == "GET":
        response = client.get(url)
    elif url.startswith("/api/"):
        token = csrf_token_from(client.get("/login" if role is None else "/").text)
        response = client.open(url, method=method, json=api_body(data, ids), headers={"X-CSRFToken": token})
    else:
        token = csrf_token_from(client.get("/login" if role is None else "/").text)
        form = {key: value.format(**ids) if isinstance(value, str) else value for key, value in data.items()}
        response = client.post(url, data={**form, "csrf_token": token})
    assert response.status_code == expected[role_index], (method, url, role, response.status_code)


def test_the_permission_table_has_every_route_of_the_app(seeded_app):
    adapter = seeded_app.url_map.bind("localhost")
    placeholders = {name: 1 for name in ("ticket", "other_ticket", "resolved", "canned", "failed_mail", "mail",
                                         "other_mail", "quarantined_mail", "token", "verify_token", "solved_token",
                                         "rating_token", "attachment", "other_attachment", "note_attachment",
                                         "article_image", "draft_image", "loose_image", "reset_token", "l1", "retired")}
    in_table = {(method, adapter.match(path.split("?")[0].format(**placeholders), method=method,
                                       return_rule=True)[0].rule) for method, path, _, _ in ROUTES}
    in_app = {(method, rule.rule) for rule in seeded_app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert in_app - in_table == set(), "routes missing from the permission table"


def test_checking_for_answers_guesses_the_category_from_the_best_suggestion(client, auth):
    auth.login(Role.CUSTOMER)
    page = post_form(client, "/help", {**REQUEST, "category": "general", "action": "check"})
    assert re.search(r'<option selected value="printers">|<option value="printers" selected>', page.text)


def test_two_agents_logging_time_on_one_ticket_get_a_clear_conflict_with_their_entry_kept(client, auth,
                                                                                          seeded_app):
    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    page = client.get(f"/tickets/{ticket_id}", headers=EN)  # agent L1 opens the ticket...
    time_form = re.search(r'<form method="post" action="/tickets/\d+/time">.*?</form>', page.text, re.S).group(0)
    stale_version = re.search(r'name="version" value="(\d+)"', time_form).group(1)
    other = seeded_app.test_client()  # ... agent L2 opens it too and replies
    AuthActions(other).login(Role.AGENT_L2)
    assert agent_post(other, ticket_id, "reply", {"body": "Looking at it", "visibility": "public"}).status_code == 302
    response = client.post(f"/tickets/{ticket_id}/time", headers=EN, data={
        "minutes": "25", "note": "remote session", "version": stale_version,
        "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 409 and "was changed by Agent L2" in response.text
    assert 'value="25"' in response.text and 'value="remote session"' in response.text
    assert count(seeded_app, TimeEntry) == 0
    assert agent_post(client, ticket_id, "time", {"minutes": "25", "note": "remote session"}).status_code == 302
    assert count(seeded_app, TimeEntry, TimeEntry.minutes == 25) == 1


def test_a_time_entry_racing_another_agents_save_is_refused(client, auth, seeded_app, monkeypatch):
    from portal.domain import tickets as svc

    auth.login(Role.CUSTOMER)
    ticket_id, _ = create_ticket(client)
    auth.logout()
    auth.login(Role.AGENT_L1)
    log_time = svc.log_time

    def log_time_while_another_agent_saves(session, ticket, *args, **kwargs):
        bump_version_from_another_connection(seeded_app, Ticket, ticket.id)
        return log_time(session, ticket, *args, **kwargs)

    monkeypatch.setattr(svc, "log_time", log_time_while_another_agent_saves)
    response = agent_post(client, ticket_id, "time", {"minutes": "10"})
    assert response.status_code == 409 and "was changed by" in response.text
    assert count(seeded_app, TimeEntry) == 0


@pytest.fixture
def app_without_search(seeded_app, tmp_path, request):
    """A process started on the seeded database when it has no search index yet, or one built with other
    models than the configured ones (then the snapshot file is of no use either)."""
    from sqlalchemy import update

    from portal.domain import search_index
    from portal.domain.models import SearchGeneration
    from tests.conftest import make_test_app

    with seeded_app.app_context():
        session = get_session()
        generation = search_index.active_generation(session)
        if request.param == "missing":
            search_index.drop_generations(session, [generation.id])
        else:
            session.execute(update(SearchGeneration).where(SearchGeneration.id == generation.id).values(
                fields={"fake": {"model": "another-model", "dim": 256, "unit": "chunk"}}))
        session.commit()
    app = make_test_app(tmp_path / "other-host", seeded_app.config["MESA_DATABASE_URL"])
    yield app
    app.extensions["mesa_engine"].dispose()


@pytest.mark.parametrize("app_without_search", ["missing", "other models"], indirect=True)
def test_a_customer_creates_a_ticket_while_search_is_unavailable(app_without_search):
    seeded_app, client = app_without_search, app_without_search.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    checked = post_form(client, "/help", {**REQUEST, "action": "check"})
    assert checked.status_code == 200
    assert "Suggestions are not available right now" in checked.text
    assert re.search(r'<button[^>]*id="submit-button"(?![^>]*hidden)[^>]*>', checked.text), \
        "the create-ticket button must be shown"
    created = client.post("/help", headers=EN, data={**REQUEST, "action": "submit",
                                                     "csrf_token": csrf_token_from(checked.text)})
    assert created.status_code == 302, created.text
    ticket_id = int(created.headers["Location"].rsplit("/", 1)[1])
    assert count(seeded_app, Ticket, Ticket.id == ticket_id, Ticket.subject == REQUEST["subject"]) == 1
    assert count(seeded_app, OutboxMessage, OutboxMessage.ticket_id == ticket_id,
                 OutboxMessage.recipient == "customer@example.com") == 1
    assert client.get(f"/tickets/{ticket_id}", headers=EN).status_code == 200


def test_opening_the_queue_changes_no_ticket(client, auth, seeded_app):
    from datetime import timedelta

    from portal.domain import tickets as svc
    from portal.domain.models import TicketEvent, utcnow
    from tests.conftest import user_by_role

    with seeded_app.app_context():  # one ticket past its escalation point, one resolved long ago
        session = get_session()
        customer, l2 = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        policy, long_ago = seeded_app.extensions["mesa_sla"], utcnow() - timedelta(days=30)
        svc.create_ticket(session, customer, "Overdue", "text", "vpn", 1, 1, policy, now=long_ago)
        resolved = svc.create_ticket(session, customer, "Resolved", "text", "vpn", 3, 3, policy, now=long_ago)
        svc.resolve(session, resolved, l2, "Fixed.", resolved.version, now=long_ago)
        session.commit()
    before = (count(seeded_app, TicketEvent), count(seeded_app, OutboxMessage), count(seeded_app, Ticket,
              Ticket.level == 1, Ticket.status == TicketStatus.NEW),
              count(seeded_app, Ticket, Ticket.status == TicketStatus.RESOLVED))
    auth.login(Role.AGENT_L1)
    for _ in range(2):
        page = client.get("/desk/?status=all", headers=EN)
        assert page.status_code == 200 and "Overdue" in page.text
    after = (count(seeded_app, TicketEvent), count(seeded_app, OutboxMessage), count(seeded_app, Ticket,
             Ticket.level == 1, Ticket.status == TicketStatus.NEW),
             count(seeded_app, Ticket, Ticket.status == TicketStatus.RESOLVED))
    assert after == before == (before[0], before[1], 1, 1)
