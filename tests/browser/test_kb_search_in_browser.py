"""The KB search box on the agent's ticket page in a real browser: typing a query lists articles from
/api/search, and "Insert link" puts the article's Markdown link into the reply where the cursor is."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.db import get_session
from portal.domain import tickets as svc
from portal.domain.models import Role
from tests.browser.conftest import LiveServer
from tests.browser.test_deflection_in_browser import sign_in
from tests.conftest import make_test_app, reset_schema, seed, user_by_role

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A seeded app (fake ranking) with one open ticket, served on 127.0.0.1: (base URL, ticket id)."""
    directory = tmp_path_factory.mktemp("kb-search")
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(directory, url)
    seed(app)
    with app.app_context():
        session = get_session()
        ticket = svc.create_ticket(session, user_by_role(session, Role.CUSTOMER), "No puedo imprimir",
                                   "La impresora de la segunda planta no aparece.", "printers", 3, 3,
                                   app.extensions["mesa_sla"], lang="es")
        session.commit()
        ticket_id = ticket.id
    server = LiveServer(app)
    server.start()
    yield server.url, ticket_id
    server.stop()
    app.extensions["mesa_engine"].dispose()


def test_the_kb_search_box_inserts_an_article_link_at_the_cursor(browser_page: Page, desk):
    base, ticket_id = desk
    sign_in(browser_page, base, Role.AGENT_L1)
    browser_page.goto(f"{base}/tickets/{ticket_id}")
    body = browser_page.locator("#reply-body")
    body.fill("Hola:\nMira esto.")
    body.evaluate("(el, at) => { el.focus(); el.setSelectionRange(at, at); }", len("Hola:\nMira"))
    browser_page.locator("#kb-search-q").fill("añadir una impresora")
    button = browser_page.locator("#kb-search-results .kb-insert").first
    expect(button).to_be_visible()
    link = button.get_attribute("data-link")
    title = browser_page.locator("#kb-search-results a").first.text_content()
    assert link.startswith(f"[{title}](") and "/articles/" in link
    button.click()
    expect(body).to_have_value(f"Hola:\nMira {link} esto.")

