"""Attachments in a real browser: a customer attaches a screenshot on the ask-for-help form, and the agent
sees it on the ticket page and opens it (an image shown inline, not a download)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.domain.models import Role
from tests.browser.test_deflection_in_browser import sign_in
from tests.sample_files import png

pytestmark = pytest.mark.browser


def test_a_customer_attaches_a_screenshot_and_the_agent_opens_it(browser, live_server: str):
    customer_context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    page = customer_context.new_page()
    sign_in(page, live_server, Role.CUSTOMER)
    page.goto(live_server + "/help")
    page.get_by_label("Asunto").fill("La impresora muestra un error extraño")
    page.get_by_label("Describe el problema").press_sequentially("aparece este mensaje al imprimir", delay=5)
    page.get_by_label("Adjuntar archivos (opcional)").set_input_files(
        {"name": "captura error.png", "mimeType": "image/png", "buffer": png(40, 30)})
    create = page.get_by_role("button", name="Sigo necesitando ayuda: crear el ticket")
    expect(create).to_be_visible()  # shown with the suggestions, without leaving the page: the file stays chosen
    create.click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    number = page.url.rsplit("/", 1)[1]
    expect(page.locator(".attachment-link")).to_have_text("captura error.png")  # the customer sees it too
    customer_context.close()

    agent_context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    agent = agent_context.new_page()
    sign_in(agent, live_server, Role.AGENT_L1)
    agent.goto(f"{live_server}/tickets/{number}")
    thumbnail = agent.locator("img.attachment-thumb")
    expect(thumbnail).to_be_visible()
    expect(thumbnail).to_have_attribute("alt", "captura error.png")
    assert agent.evaluate("document.querySelector('img.attachment-thumb').naturalWidth") == 40  # decoded

    with agent_context.expect_page() as opened:
        agent.locator(".attachment-link").click()  # opens in a new tab, shown by the browser
    image_page = opened.value
    image_page.wait_for_load_state()
    assert re.search(r"/attachments/\d+/captura-error\.png$", image_page.url)
    response = image_page.request.get(image_page.url)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.body() == png(40, 30)
    agent_context.close()
