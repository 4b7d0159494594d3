"""Browser fixtures: the seeded Mesa app served over real HTTP on 127.0.0.1, and headless Chromium driven
by Playwright (Debian's /usr/bin/chromium, installed by scripts/install-chromium.sh, which `make test` runs).

- ``live_server``: the base URL of the app (starter KB indexed with the fake embedder, one account per role,
  CSRF on), served by werkzeug in a background thread for the whole session.
- ``browser``: one Chromium for the whole session.
- ``browser_page``: a fresh context (no cookies, Spanish browser) and page per test, default timeout a few
  seconds. When a test fails, a screenshot of the page is saved in the test's tmp dir and named in the report.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from indexer import DEFAULT_RANKING
from tests.conftest import make_test_app, reset_schema, seed

CHROMIUM = Path("/usr/bin/chromium")
# Background-networking flags: this machine's network is closed, Chromium must not try to phone home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 5_000
LAUNCH_TIMEOUT_MS = 30_000


class LiveServer:
    """The app served on 127.0.0.1 on a free port, in a daemon thread."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="mesa-live-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The base URL (no trailing slash) of a seeded Mesa app served over HTTP on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("live-server")
    # Always SQLite: this app lives for the session, beside tests that reset a shared PostgreSQL schema.
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    # The real default model (multilingual USE, ~4 s to load and index the starter KB): a person's questions
    # in Spanish must find the right articles, as in `make run`.
    app = make_test_app(directory, url, ranking=DEFAULT_RANKING)
    seed(app)
    server = LiveServer(app)
    server.start()
    yield server.url
    server.stop()
    app.extensions["mesa_engine"].dispose()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, launched once. Fails (never skips) when it cannot start."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh (`make test` runs it). "
                    "Do not run `playwright install`: it downloads a browser, which Mesa's machines cannot.",
                    pytrace=False)
    from playwright.sync_api import Error, expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                  headless=True, timeout=LAUNCH_TIMEOUT_MS)
        except Error as exc:
            pytest.fail(f"Chromium ({CHROMIUM}) did not start under Playwright:\n{exc}", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser, request, tmp_path):
    """A page in a fresh browser context (a visitor whose browser asks for Spanish), desktop size."""
    context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    request.node.mesa_browser_page = (page, tmp_path)
    yield page
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, save a screenshot of its page and name the file in the report."""
    report = yield
    saved = getattr(item, "mesa_browser_page", None)
    if saved is not None and report.when == "call" and report.failed:
        page, tmp_path = saved
        path = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("browser", f"screenshot of the page at {page.url}: {path}"))
        except Exception as exc:  # the page may be gone; the test's own error matters more
            report.sections.append(("browser", f"no screenshot: {exc}"))
    return report
