"""A NUL character (\\0) in a path, a query string or a form is refused with a 4xx, never stored or searched
(PostgreSQL cannot hold it: it used to be a 500 there)."""

import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.domain.models import PortalEvent, Role, Ticket, User
from tests.conftest import AuthActions, csrf_token_from

EN = {"Accept-Language": "en"}


@pytest.mark.parametrize("role, url, status", [
    (None, "/articles/%00", 404),
    (None, "/articles/laptop-disk%00-full", 404),
    (None, "/categories/%00", 404),
    (None, "/articles/laptop-disk-full?q=%00x", 400),
    (None, "/search?q=%00vpn", 400),
    (None, "/search?q=vpn&lang=%00", 400),
    (None, "/api/search?q=%00vpn", 400),
    (None, "/api/suggest?q=vpn%00client", 400),
    (None, "/login?next=/%00", 400),
    (Role.AGENT_L1, "/desk/?category=%00", 400),
    (Role.AGENT_L1, "/kb/articles/%00/history", 404),
    (Role.CUSTOMER, "/tickets?x=%00", 400),
])
def test_nul_in_an_address_is_a_client_error(seeded_app, role, url, status):
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    response = client.get(url, headers=EN)
    assert response.status_code == status, response.text
    if status == 400:
        message = response.json["error"] if url.startswith("/api/") else response.text
        assert "contains a NUL character" in message
    with seeded_app.app_context():
        assert get_session().scalar(select(func.count()).select_from(PortalEvent)) == 0


HELP = {"subject": "Printer queue stuck", "description": "Nothing prints.", "category": "printers",
        "type": "incident", "impact": "3", "urgency": "2", "action": "submit"}


@pytest.mark.parametrize("role, page, url, data", [
    (Role.CUSTOMER, "/help", "/help", {**HELP, "description": "Nothing\x00 prints."}),
    (Role.CUSTOMER, "/help", "/help", {**HELP, "subject": "\x00"}),
    (None, "/register", "/register", {"name": "No\x00ra", "email": "nora@example.com",
                                      "password": "a long password", "confirm": "a long password"}),
    (None, "/login", "/login", {"email": "customer@example.com\x00", "password": "x"}),
    (Role.AGENT_L2, "/kb/new", "/kb/new", {"title": "Dock", "body": "## Fix\n\nUp\x00date.\n", "lang": "en",
                                          "category": "hardware", "action": "save", "confirm_new": "1"}),
    (Role.AGENT_L2, "/kb/new", "/kb/preview", {"body": "**b**\x00"}),
    (Role.CUSTOMER, "/", "/articles/laptop-disk-full/feedback", {"helpful": "no", "comment": "bad\x00"}),
])
def test_nul_in_a_form_is_refused_with_a_message_and_nothing_is_saved(seeded_app, role, page, url, data):
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    with seeded_app.app_context():
        users_before = get_session().scalar(select(func.count()).select_from(User))
    token = csrf_token_from(client.get(page, headers=EN).text)
    response = client.post(url, data={**data, "csrf_token": token}, headers=EN)
    assert response.status_code == 400, response.text
    assert "The form contains a NUL character" in response.text
    with seeded_app.app_context():
        session = get_session()
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        assert session.scalar(select(func.count()).select_from(User)) == users_before


def test_the_same_forms_without_nul_still_work(seeded_app):
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    token = csrf_token_from(client.get("/help", headers=EN).text)
    assert client.post("/help", data={**HELP, "csrf_token": token}, headers=EN).status_code == 302
