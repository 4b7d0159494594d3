"""The portal in a real browser, used as a person would: search, read, switch language, sign in and out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD, ROLE_EMAILS, role_name
from portal.domain.models import Role

pytestmark = pytest.mark.browser


def test_visitor_searches_and_reads_an_article(browser_page: Page, live_server: str):
    page = browser_page
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("¿En qué podemos ayudarte?")

    search_box = page.get_by_role("main").get_by_role("searchbox", name="Buscar")
    expect(search_box).to_be_focused()  # autofocus: the visitor can type at once
    search_box.fill("olvidé mi contraseña")
    page.get_by_role("main").get_by_role("button", name="Buscar").click()

    expect(page).to_have_url(re.compile(r"/search\?q=olvid"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Resultados para «olvidé mi contraseña»")
    answers = page.locator("main #answers > li")  # the articles confident enough to count as answers
    expect(answers.first).to_be_visible()
    assert page.locator("main ol.hits > li").count() >= 3  # then the other close ones
    results = answers
    first_link = results.first.get_by_role("link").first
    title = first_link.inner_text()
    assert "contraseña" in title.lower()

    first_link.click()
    expect(page).to_have_url(re.compile(r"/articles/[a-z0-9-]+$"))
    article = page.get_by_role("article")
    expect(article.get_by_role("heading", level=1)).to_have_text(title)
    sections = article.get_by_role("heading", level=2)  # the article's "## " sections, rendered
    expect(sections.first).to_be_visible()
    assert sections.count() >= 2
    expect(page.get_by_role("link", name="Centro de ayuda")).to_be_visible()  # breadcrumb back home


def test_language_switch_changes_the_ui_and_sticks(browser_page: Page, live_server: str):
    page = browser_page
    page.goto(live_server + "/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("¿En qué podemos ayudarte?")

    page.get_by_role("banner").get_by_role("link", name="English").click()

    expect(page).to_have_url(live_server + "/")  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("How can we help?")
    expect(page.get_by_role("banner").get_by_role("link", name="Español")).to_be_visible()

    # Next page: still English, although the browser keeps asking for Spanish.
    page.get_by_role("main").get_by_role("link", name="VPN and remote access").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("VPN and remote access")
    expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_customer_signs_in_and_out(browser_page: Page, live_server: str):
    page = browser_page
    name = role_name(Role.CUSTOMER)
    page.goto(live_server + "/")
    topbar = page.get_by_role("banner")
    topbar.get_by_role("link", name="Iniciar sesión").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")
    page.get_by_label("Correo electrónico").fill(ROLE_EMAILS[Role.CUSTOMER])
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Iniciar sesión").click()  # the form's own CSRF token

    expect(page).to_have_url(live_server + "/")
    expect(page.get_by_role("status")).to_have_text(f"Has iniciado sesión como {name}.")
    expect(topbar.get_by_text(name, exact=True)).to_be_visible()
    sign_out = topbar.get_by_role("button", name="Cerrar sesión")
    expect(sign_out).to_be_visible()
    expect(topbar.get_by_role("link", name="Iniciar sesión")).to_have_count(0)

    sign_out.click()
    expect(page.get_by_role("status")).to_have_text("Has cerrado la sesión.")
    expect(topbar.get_by_role("link", name="Iniciar sesión")).to_be_visible()
    expect(topbar.get_by_role("button", name="Cerrar sesión")).to_have_count(0)
    expect(topbar.get_by_text(name, exact=True)).to_have_count(0)


@pytest.mark.parametrize("path", ["/", "/search?q=no+puedo+conectarme+a+la+VPN+desde+casa",
                                  "/articles/vpn-conectar-desde-casa", "/login"])
def test_pages_fit_a_phone_screen(browser_page: Page, live_server: str, path: str):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server + path)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    scroll_width, viewport_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= viewport_width, f"{path} scrolls sideways on a phone"
    top_search = page.get_by_role("banner").get_by_role("searchbox")
    box = top_search.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport_width
    assert float(top_search.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px")) >= 16, \
        "inputs under 16px make phones zoom in when they get the focus"
