"""The deflection flow in a real browser: suggestions while typing, "solved" (no ticket), "I still need help"
(a ticket), and the agent's queue listing what the customer already saw."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.domain.models import Role
from tests.conftest import PASSWORD, ROLE_EMAILS

pytestmark = pytest.mark.browser


def sign_in(page: Page, base: str, role: Role) -> None:
    page.goto(base + "/login")
    page.get_by_label("Correo electrónico").fill(ROLE_EMAILS[role])
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()


def my_ticket_count(page: Page, base: str) -> int:
    page.goto(base + "/tickets")
    return page.locator("table.table tbody tr").count()


def test_customer_is_helped_by_a_suggestion_then_opens_a_ticket_the_agent_sees(browser, live_server: str):
    customer_context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    page = customer_context.new_page()
    sign_in(page, live_server, Role.CUSTOMER)
    tickets_before = my_ticket_count(page, live_server)

    # 1. Typing a question shows suggestions (debounced, from the same ranking as search), no button pressed.
    page.get_by_role("banner").get_by_role("link", name="Pedir ayuda").click()
    page.get_by_label("Asunto").fill("La cola de impresión está atascada")
    page.get_by_label("Describe el problema").press_sequentially("mi trabajo de impresión no sale de la cola", delay=5)
    suggestions = page.locator("#suggestion-list li.suggestion")
    expect(suggestions.first).to_be_visible()
    assert 1 <= suggestions.count() <= 5
    first = suggestions.first
    expect(first).to_have_attribute("data-slug", re.compile("print-queue-stuck|anadir-impresora"))
    title = first.get_by_role("link").inner_text()

    # 2. "This solved my problem": no ticket is created.
    first.get_by_role("button", name="Esto ha resuelto mi problema").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nos alegra haberte ayudado")
    expect(page.get_by_text(f"No se ha creado ningún ticket. El artículo «{title}»")).to_be_visible()
    assert my_ticket_count(page, live_server) == tickets_before

    # 3. Another question that the suggestions do not solve: "I still need help" creates the ticket.
    page.goto(live_server + "/help")
    page.get_by_label("Asunto").fill("Necesito acceso a la carpeta compartida de Finanzas")
    page.get_by_label("Describe el problema").press_sequentially("no tengo permisos para abrir la carpeta", delay=5)
    expect(page.locator("#suggestion-list li.suggestion").first).to_be_visible()
    seen = page.locator("#suggestion-list li.suggestion").first.get_attribute("data-slug")
    page.get_by_role("button", name="Sigo necesitando ayuda: crear el ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    number = page.url.rsplit("/", 1)[1]
    expect(page.get_by_text(re.compile(rf"Ticket #{number} creado\. Recibirás una primera respuesta"))).to_be_visible()
    expect(page.locator("#ticket-status")).to_have_text("Nuevo")
    assert my_ticket_count(page, live_server) == tickets_before + 1
    customer_context.close()

    # 4. An agent sees it in the queue, with the articles the customer was shown.
    agent_context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    agent = agent_context.new_page()
    sign_in(agent, live_server, Role.AGENT_L1)
    agent.get_by_role("banner").get_by_role("link", name="Cola").click()
    row = agent.locator(f'tr[data-ticket="{number}"]')
    expect(row).to_be_visible()
    expect(row.locator(f'td.saw a[href="/articles/{seen}"]')).to_be_visible()
    row.get_by_role("link", name=f"#{number}").click()
    expect(agent.get_by_role("heading", name="Artículos que el usuario ya vio")).to_be_visible()
    expect(agent.locator(f'.seen-articles a[href="/articles/{seen}"]')).to_be_visible()
    agent_context.close()
