"""The article editor re-checks for duplicates as the agent types: the warning appears, names the article,
and goes away when the text becomes another topic."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.domain.models import Role
from tests.browser.conftest import LiveServer
from tests.browser.test_deflection_in_browser import sign_in
from tests.conftest import make_test_app, reset_schema, seed

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def editor_site(tmp_path_factory):
    """A seeded app on the fake ranking, served on 127.0.0.1. Its threshold suits the fake embedder (whose
    confidence is no measure of topics; 0.45 is fitted for the default ranking)."""
    directory = tmp_path_factory.mktemp("editor-duplicates")
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(directory, url, MESA_DUPLICATE_THRESHOLD=0.6)
    seed(app)
    server = LiveServer(app)
    server.start()
    yield server.url
    server.stop()
    app.extensions["mesa_engine"].dispose()


def test_the_duplicate_warning_follows_the_text_as_the_agent_types(browser_page: Page, editor_site: str):
    sign_in(browser_page, editor_site, Role.AGENT_L1)
    browser_page.goto(editor_site + "/kb/new")
    warning = browser_page.locator("#duplicates")
    expect(warning).to_be_hidden()
    browser_page.locator("input[name=title]").fill("Printer queue stuck")
    browser_page.locator("#editor-body").press_sequentially("My print job is stuck", delay=5)
    expect(warning).to_be_visible()
    expect(warning.locator('a[href="/articles/print-queue-stuck"]')).to_be_visible()
    browser_page.locator("input[name=title]").fill("xyzzy")
    browser_page.locator("#editor-body").fill("")
    browser_page.locator("#editor-body").press_sequentially("frobnicate", delay=5)
    expect(warning).to_be_hidden()
