"""The Content-Security-Policy in real Chromium: walking the main pages as a customer, an agent and an admin
(scripts at work: suggestions while typing, the editor's live preview, the reply helpers) raises no CSP
violation, no console error and no page error; and an inline script is indeed refused (the check works)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal.domain.models import Role
from tests.browser.test_deflection_in_browser import sign_in

pytestmark = pytest.mark.browser

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline")
                              + " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


class Watched:
    """A browser context whose pages report CSP violations, console errors and uncaught exceptions."""

    def __init__(self, browser):
        self.context: BrowserContext = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 900})
        self.context.add_init_script(COLLECT_VIOLATIONS)
        self.problems: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(
            f"console error on {self.page.url}: {message.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error on {self.page.url}: {error}"))

    def visit(self, url: str) -> None:
        """Open a page and note its violations."""
        response = self.page.goto(url)
        assert response is not None and response.status < 400, (url, response and response.status)
        self.note_violations()

    def note_violations(self) -> None:
        """Add the violations the current page reported so far."""
        for violation in self.page.evaluate("window.__cspViolations || []"):
            self.problems.append(f"CSP violation on {self.page.url}: {violation}")
        self.page.evaluate("window.__cspViolations = []")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser):
    contexts = []

    def open_context() -> Watched:
        contexts.append(Watched(browser))
        return contexts[-1]

    yield open_context
    for context in contexts:
        context.close()


def test_the_watch_catches_an_inline_script(watched, live_server: str):
    """The control: an inline script is refused by the policy, and the watch reports it."""
    customer = watched()
    customer.visit(live_server + "/")
    customer.page.evaluate("""() => { const s = document.createElement("script");
        s.textContent = "window.__inlineRan = true"; document.body.appendChild(s); }""")
    customer.page.wait_for_timeout(200)
    customer.note_violations()
    assert customer.page.evaluate("window.__inlineRan === true") is False
    assert any("script-src" in problem for problem in customer.problems), customer.problems


def test_customer_agent_and_admin_walk_the_portal_without_a_csp_violation(watched, live_server: str):
    customer = watched()
    sign_in(customer.page, live_server, Role.CUSTOMER)
    for path in ("/", "/search?q=no+puedo+conectarme+a+la+VPN", "/articles/vpn-conectar-desde-casa",
                 "/categories/vpn", "/tickets"):
        customer.visit(live_server + path)
    customer.visit(live_server + "/help")
    page = customer.page
    page.get_by_label("Asunto").fill("La VPN se desconecta cada hora")
    page.get_by_label("Describe el problema").press_sequentially("la conexión vpn se corta desde casa", delay=5)
    expect(page.locator("#suggestion-list li.suggestion").first).to_be_visible()  # help.js ran and fetched
    page.get_by_role("button", name="Sigo necesitando ayuda: crear el ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    ticket_url = page.url
    customer.note_violations()

    agent = watched()
    sign_in(agent.page, live_server, Role.AGENT_L2)
    for path in ("/desk/", "/reports/", "/kb/", "/kb/articles/vpn-conectar-desde-casa/history"):
        agent.visit(live_server + path)
    agent.visit(ticket_url)
    reply = agent.page.locator("#reply-body")
    expect(reply).to_be_visible()
    link_buttons = agent.page.locator(".insert-link")
    if link_buttons.count():  # ticket.js: insert a link to a suggested article into the reply
        link_buttons.first.click()
        expect(reply).to_have_value(re.compile(r"/articles/"))
    agent.visit(live_server + "/kb/new")
    agent.page.locator("#editor-body").fill("## Pasos\n\n**Reinicia** el cliente VPN.")
    expect(agent.page.locator("#editor-preview strong")).to_have_text("Reinicia")  # editor.js: live preview
    agent.note_violations()

    admin = watched()
    sign_in(admin.page, live_server, Role.ADMIN)
    for path in ("/admin/canned", "/admin/teams", "/admin/outbox", "/desk/", "/reports/"):
        admin.visit(live_server + path)

    problems = customer.problems + agent.problems + admin.problems
    assert problems == []
