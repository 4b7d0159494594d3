"""A question no article answers, in a real browser: no suggestion, "an agent will help", the ticket, and the
question in the reports' content gaps without the e-mail address its description held."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.domain.models import Role
from tests.browser.test_deflection_in_browser import sign_in

pytestmark = pytest.mark.browser

SUBJECT = "La máquina de café de la segunda planta no funciona"
DESCRIPTION = "Desde esta mañana no sale café y la pantalla está apagada. Escribidme a ana.garcia@example.com"


def test_a_question_no_article_answers_gets_no_suggestion_and_fills_the_content_gaps(browser, live_server: str):
    context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, Role.CUSTOMER)
    page.get_by_role("banner").get_by_role("link", name="Pedir ayuda").click()
    page.get_by_label("Asunto").fill(SUBJECT)
    page.get_by_label("Describe el problema").press_sequentially(DESCRIPTION, delay=5)

    expect(page.locator("#no-suggestions")).to_be_visible()  # the debounced suggestions came back empty
    expect(page.locator("#no-suggestions")).to_contain_text("un agente te ayudará")
    assert page.locator("#suggestion-list li.suggestion").count() == 0
    page.get_by_role("button", name="Sigo necesitando ayuda: crear el ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    context.close()

    agent_context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
    agent = agent_context.new_page()
    sign_in(agent, live_server, Role.AGENT_L1)
    agent.goto(live_server + "/reports/?days=7")
    gaps = agent.locator("#unanswered li")
    expect(gaps.filter(has_text=SUBJECT)).to_have_count(1)  # the whole burst of typing is one question
    text = gaps.filter(has_text=SUBJECT).inner_text()
    assert "ana.garcia" not in text and "@" not in text and "[e-mail]" in text
    agent_context.close()
