"""The API reference and the account page's tokens in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.domain.models import Role
from tests.conftest import PASSWORD, ROLE_EMAILS

pytestmark = pytest.mark.browser
STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def test_the_reference_renders_under_a_strict_csp_loading_nothing_from_outside(browser_page: Page, live_server):
    page = browser_page
    requested, violations = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(f"{live_server}/api/reference", with_csp)
    page.goto(live_server + "/api/reference")
    expect(page.get_by_text("/api/v1/tickets/{ticket_id}/escalate")).to_be_visible()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Mesa API")
    assert requested and all(url.startswith(live_server) or url.startswith("data:") for url in requested), requested
    assert not [text for text in violations if "script-src" in text], violations


def test_a_customer_creates_a_token_and_a_script_uses_it(browser_page: Page, live_server):
    page = browser_page
    page.goto(live_server + "/login")
    page.get_by_label("Correo electrónico").fill(ROLE_EMAILS[Role.CUSTOMER])
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Iniciar sesión").click()
    page.get_by_role("banner").get_by_role("link", name="Customer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tu cuenta")

    page.get_by_label("Nombre del token").fill("Inventario")
    page.get_by_label("Lectura y escritura").check()
    page.get_by_role("button", name="Crear token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("mesa_")
    expect(page.get_by_role("cell", name="Inventario")).to_be_visible()

    answer = page.request.get(live_server + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status == 200 and answer.json()["scope"] == "write"

    page.get_by_role("banner").get_by_role("link", name="Customer").click()  # shown once: not any more
    expect(page.locator("#new-token")).to_have_count(0)
    page.get_by_role("button", name="Revocar").click()
    expect(page.get_by_text("Token «Inventario» revocado.")).to_be_visible()
    refused = page.request.get(live_server + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status == 401
