"""The agent's reply box in a real browser: a canned reply goes where the cursor is (what the agent typed
stays), and an inserted article link is set apart from the word before it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.db import get_session
from portal.domain import tickets as svc
from portal.domain.models import CannedReply, Role
from tests.browser.conftest import LiveServer
from tests.browser.test_deflection_in_browser import sign_in
from tests.conftest import make_test_app, reset_schema, seed, user_by_role

pytestmark = pytest.mark.browser
CANNED_EN = "Please restart the laptop."


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A seeded app (fake ranking: these tests are about the page) with a Spanish ticket and two canned
    replies, served on 127.0.0.1: (base URL, ticket id)."""
    directory = tmp_path_factory.mktemp("reply-box")
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(directory, url)
    seed(app)
    with app.app_context():
        session = get_session()
        session.add_all([CannedReply(title="Restart", body=CANNED_EN),
                         CannedReply(title="Reiniciar", body="Por favor, reinicia el portátil.")])
        ticket = svc.create_ticket(session, user_by_role(session, Role.CUSTOMER), "La impresora no imprime",
                                   "La cola de impresión está atascada desde esta mañana.", "printers", 3, 3,
                                   app.extensions["mesa_sla"], lang="es")
        session.commit()
        ticket_id = ticket.id
    server = LiveServer(app)
    server.start()
    yield server.url, ticket_id
    server.stop()
    app.extensions["mesa_engine"].dispose()


def open_ticket(page: Page, desk) -> None:
    base, ticket_id = desk
    sign_in(page, base, Role.AGENT_L1)
    page.goto(f"{base}/tickets/{ticket_id}")
    expect(page.locator("#reply-body")).to_be_visible()


def put_cursor(page: Page, position: int) -> None:
    page.locator("#reply-body").evaluate("(el, at) => { el.focus(); el.setSelectionRange(at, at); }", position)


def test_a_canned_reply_is_inserted_at_the_cursor_keeping_what_was_typed(browser_page: Page, desk):
    open_ticket(browser_page, desk)
    body = browser_page.locator("#reply-body")
    body.fill("Hola Ana:\nGracias por avisar.")
    put_cursor(browser_page, len("Hola Ana:"))
    browser_page.locator("#canned-select").select_option(label="Restart")
    expect(body).to_have_value(f"Hola Ana:\n\n{CANNED_EN}\n\nGracias por avisar.")
    # The cursor is after the inserted reply: typing goes on from there.
    browser_page.keyboard.type(" Y luego.")
    expect(body).to_have_value(f"Hola Ana:\n\n{CANNED_EN} Y luego.\n\nGracias por avisar.")
    # The Spanish ticket offers the Spanish replies first; the select is free for the next choice.
    groups = browser_page.locator("#canned-select optgroup")
    expect(groups.first).to_have_attribute("data-lang", "es")
    expect(browser_page.locator("#canned-select")).to_have_value("")


def test_an_inserted_link_has_a_space_before_and_after_it(browser_page: Page, desk):
    open_ticket(browser_page, desk)
    body = browser_page.locator("#reply-body")
    body.fill("Luis PrimeroSegundo")
    put_cursor(browser_page, len("Luis Primero"))
    button = browser_page.locator(".insert-link").first
    link = button.get_attribute("data-link")
    button.click()
    expect(body).to_have_value(f"Luis Primero {link} Segundo")
    # At the end of a sentence's word, before punctuation: a space before, none before the full stop.
    body.fill("Mira.")
    put_cursor(browser_page, len("Mira"))
    button.click()
    expect(body).to_have_value(f"Mira {link}.")


def test_a_sent_reply_keeps_its_line_breaks_and_shows_its_link(browser_page: Page, desk):
    open_ticket(browser_page, desk)
    body = browser_page.locator("#reply-body")
    body.fill("Primera línea\nsegunda línea:")
    browser_page.locator(".insert-link").first.click()
    title = browser_page.locator(".matching-articles li a").first.inner_text()
    browser_page.locator("#reply-form").get_by_role("button", name="Enviar").click()
    reply = browser_page.locator(".event-reply .event-body").last
    expect(reply.locator("br")).to_have_count(1)
    expect(reply.get_by_role("link", name=title)).to_be_visible()
