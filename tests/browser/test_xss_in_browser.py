"""Every XSS payload of tests/data/xss_payloads.txt through every sink of user text, in real Chromium: none
executes, none leaves a tag with a handler or a script address, no page fetches anything from another host.

Sinks: ticket subject, description, replies, internal notes and solution; user names; team names; canned
replies (title and body); article titles and bodies (page, editor, history, the live preview typed into
the editor); an article promoted from a ticket; the search echo, the help form's echo and the queue's
filters in the address. The payloads are
stored through the domain functions (the forms' own path below the form), batched so that one page shows
many of them; the pages are read as a customer, an agent and an admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from flask import current_app
from playwright.sync_api import Page, expect

from portal.db import get_session
from portal.domain import knowledge
from portal.domain import tickets as ticket_service
from portal.domain import users as user_service
from portal.domain.models import CannedReply, Role, Team
from portal.search import get_search
from tests.browser.conftest import LiveServer, TIMEOUT_MS
from tests.conftest import PASSWORD, ROLE_EMAILS, make_test_app, reset_schema, seed, user_by_role

pytestmark = pytest.mark.browser

PAYLOAD_FILE = Path(__file__).resolve().parent.parent / "data" / "xss_payloads.txt"
SEARCH_QUERY_CHARS = 480  # the search page accepts 500 (MESA_SEARCH_MAX_QUERY)
PROMOTED_TICKETS = 8  # subject tickets also opened in the "promote to article" editor


def load_payloads() -> list[str]:
    """The payloads of the data file (comments and blank lines left out)."""
    lines = PAYLOAD_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


PAYLOADS = load_payloads()

# Installed in every page before its own scripts: the marker the payloads call, and alert & co. recorded.
MARKER_SCRIPT = """
window.__xssHits = [];
window.__xss = function () { window.__xssHits.push(String(location.pathname)); };
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = function () { window.__xssHits.push(name + " " + location.pathname); };
}
"""

# What a payload that escaped Mesa's escaping would leave in the DOM, even where nothing runs.
AUDIT_SCRIPT = """
() => {
  const bad = [];
  const dangerous = /^(javascript|vbscript|data:text|data:application)/i;
  const urlAttributes = ["href", "src", "action", "formaction", "data", "xlink:href", "poster", "background"];
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const attribute of el.attributes) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value.replace(/[\\s\\u0000-\\u001f]/g, "");
      if (name.startsWith("on")) bad.push(`${tag}[${name}]`);
      if (name === "srcdoc") bad.push(`${tag}[srcdoc]`);
      if (urlAttributes.includes(name) && dangerous.test(value)) bad.push(`${tag}[${name}=${value.slice(0, 40)}]`);
    }
    if (["iframe", "frame", "object", "embed", "base", "applet", "frameset"].includes(tag)) bad.push(tag);
    if (tag === "meta" && el.hasAttribute("http-equiv")) bad.push("meta[http-equiv]");
    if (tag === "script") {
      const own = el.src && new URL(el.src).origin === location.origin && new URL(el.src).pathname.startsWith("/static/");
      if (el.src && !own) bad.push(`script[src=${el.src}]`);
      if (!el.src && /__xss|alert/.test(el.textContent)) bad.push("inline script with a payload");
    }
    if ((tag === "img" || tag === "link" || tag === "source" || tag === "video" || tag === "audio")
        && (el.src || el.href) && new URL(el.src || el.href, location.href).origin !== location.origin) {
      bad.push(`${tag} from ${el.src || el.href}`);
    }
  }
  for (const el of document.querySelectorAll(".article-body [class]")) {
    if (!(el.tagName === "CODE" && /^(language-[\\w+#.-]+\\s*)+$/.test(el.className))) {
      bad.push(`class "${el.className}" in user text`);
    }
  }
  return bad;
}
"""


@dataclass
class XssSite:
    """The served app with the payloads stored, and where they are."""

    url: str
    combined_ticket: int = 0
    subject_tickets: list[int] = field(default_factory=list)
    article_slug: str = ""
    promoted_slug: str = ""


def store_payloads(app) -> XssSite:
    """Every payload into every sink, batched: see the module's docstring."""
    site = XssSite(url="")
    with app.app_context():
        session = get_session()
        policy = current_app.extensions["mesa_sla"]
        customer, l2 = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        customer.name = PAYLOADS[0]  # the requester's name: agents see it, the customer in the top bar
        agents = [user_service.create_user(session, f"xss-agent-{i}@example.com", payload, PASSWORD, Role.AGENT_L1)
                  for i, payload in enumerate(PAYLOADS)]
        teams = [Team(name=payload, categories=[]) for payload in PAYLOADS]
        session.add_all(teams)
        for agent, team in zip(agents, teams):
            agent.team = team
        session.add_all(CannedReply(title=payload, body=f"{payload} {{requester_name}} {{subject}}")
                        for payload in PAYLOADS)
        session.flush()

        everything = "\n\n".join(PAYLOADS)
        combined = ticket_service.create_ticket(session, customer, PAYLOADS[1], everything, "vpn", 2, 2, policy)
        combined.team = teams[1]
        for agent, payload in zip(agents, PAYLOADS):
            ticket_service.add_reply(session, combined, agent, payload, True, combined.version)
            ticket_service.add_reply(session, combined, agent, payload, False, combined.version)
        for payload in PAYLOADS[:10]:
            ticket_service.add_reply(session, combined, customer, payload, True, combined.version)
        ticket_service.resolve(session, combined, l2, everything, combined.version)
        site.combined_ticket = combined.id

        for i, (payload, team) in enumerate(zip(PAYLOADS, teams)):
            ticket = ticket_service.create_ticket(session, customer, payload, payload, "printers", 3, 3, policy)
            ticket.team = team
            if i < PROMOTED_TICKETS:
                ticket_service.resolve(session, ticket, l2, payload, ticket.version)
            site.subject_tickets.append(ticket.id)

        for payload in PAYLOADS:  # drafts: their titles on the knowledge-base page
            knowledge.create_article(session, knowledge.ArticleDraft(title=payload, body=payload), l2)
        article = knowledge.create_article(session, knowledge.ArticleDraft(title=PAYLOADS[2], body=everything,
                                                                           tags=PAYLOADS[:3]), l2)
        knowledge.change_state(session, article, l2, "publish", article.version)
        promoted = knowledge.create_article(session, knowledge.draft_from_ticket(combined), l2,
                                            source_ticket=combined)
        knowledge.change_state(session, promoted, l2, "publish", promoted.version)
        for published in (article, promoted):
            get_search().stage_article(session, published)
        session.commit()
        site.article_slug, site.promoted_slug = article.slug, promoted.slug
    return site


@pytest.fixture(scope="module")
def xss_site(tmp_path_factory):
    """A seeded app of its own (fake ranking) holding every payload, served on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("xss-site")
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(directory, url)
    seed(app)
    site = store_payloads(app)
    server = LiveServer(app)
    server.start()
    site.url = server.url
    yield site
    server.stop()
    app.extensions["mesa_engine"].dispose()


class Watcher:
    """One signed-in browser context: records dialogs, marker calls, foreign requests and DOM findings."""

    def __init__(self, browser, site: XssSite, role: Role | None):
        self.site = site
        self.findings: list[str] = []
        self.context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(MARKER_SCRIPT)
        self.context.route("**/*", self._only_mesa)
        self.page: Page = self.context.new_page()
        self.page.on("dialog", self._dialog)
        if role is not None:
            self.sign_in(role)

    def _only_mesa(self, route) -> None:
        if urlsplit(route.request.url).netloc != urlsplit(self.site.url).netloc:
            self.findings.append(f"request to {route.request.url} from {self.page.url}")
            route.abort()
        else:
            route.continue_()

    def _dialog(self, dialog) -> None:
        self.findings.append(f"dialog {dialog.type} {dialog.message!r} on {self.page.url}")
        dialog.dismiss()

    def sign_in(self, role: Role) -> None:
        self.page.goto(self.site.url + "/login")
        self.page.locator("input[name=email]").fill(ROLE_EMAILS[role])
        self.page.locator("input[name=password]").fill(PASSWORD)
        self.page.locator("main form [type=submit]").first.click()
        self.page.wait_for_load_state("load")
        assert "/login" not in self.page.url, f"{role} could not sign in"

    def visit(self, path: str) -> None:
        """Open a page and audit it."""
        response = self.page.goto(self.site.url + path, wait_until="load")
        assert response is not None and response.status < 500, f"{path}: {response and response.status}"
        self.audit(path)

    def audit(self, where: str) -> None:
        """Record what a payload would have left: marker calls and dangerous DOM."""
        self.page.wait_for_timeout(20)  # error and focus handlers fire right after load
        hits = self.page.evaluate("window.__xssHits || []")
        self.findings.extend(f"payload ran on {where}: {hit}" for hit in hits)
        self.findings.extend(f"{where}: {finding}" for finding in self.page.evaluate(AUDIT_SCRIPT))

    def close(self) -> None:
        self.context.close()


def search_queries() -> list[str]:
    """The payloads joined into as few search queries as the length limit allows."""
    queries, current = [], ""
    for payload in PAYLOADS:
        if current and len(current) + 1 + len(payload) > SEARCH_QUERY_CHARS:
            queries.append(current)
            current = ""
        current = f"{current} {payload}".strip()
    return queries + [current]


def test_the_payload_corpus_is_large_and_fits_every_sink():
    assert len(PAYLOADS) >= 50 and len(set(PAYLOADS)) == len(PAYLOADS)
    assert all(len(payload) <= 80 and "\n" not in payload for payload in PAYLOADS)


def test_no_payload_runs_for_the_customer(browser, xss_site):
    watcher = Watcher(browser, xss_site, Role.CUSTOMER)
    try:
        for path in ("/", "/tickets", f"/tickets/{xss_site.combined_ticket}",
                     *(f"/tickets/{ticket_id}" for ticket_id in xss_site.subject_tickets[:PROMOTED_TICKETS]),
                     f"/articles/{xss_site.article_slug}", f"/articles/{xss_site.promoted_slug}",
                     f"/articles/{xss_site.article_slug}?q={quote(PAYLOADS[3])}&from=suggestion",
                     "/categories/general"):
            watcher.visit(path)
        for query in search_queries():
            watcher.visit("/search?q=" + quote(query))
        watcher.visit("/help")  # the help form echoes what was typed when it checks for answers
        watcher.page.locator("input[name=subject]").fill(PAYLOADS[4])
        watcher.page.locator("textarea[name=description]").fill("\n".join(PAYLOADS))
        watcher.page.locator("#check-button").click()
        watcher.page.wait_for_load_state("load")
        watcher.audit("/help (checked)")
    finally:
        watcher.close()
    assert watcher.findings == []


def test_no_payload_runs_for_an_agent(browser, xss_site):
    watcher = Watcher(browser, xss_site, Role.AGENT_L2)
    try:
        watcher.visit(f"/tickets/{xss_site.combined_ticket}")
        canned = watcher.page.locator("#canned-select")
        canned.select_option(index=len(PAYLOADS) // 2)  # ticket.js puts a canned reply into the message
        expect(watcher.page.locator("#reply-body")).not_to_have_value("")
        watcher.audit("canned reply chosen")
        for path in ("/desk/", f"/desk/?category={quote(PAYLOADS[5])}&sort={quote(PAYLOADS[6])}", "/kb/",
                     *(f"/tickets/{ticket_id}" for ticket_id in xss_site.subject_tickets),
                     *(f"/kb/from-ticket/{ticket_id}" for ticket_id in
                       [xss_site.combined_ticket, *xss_site.subject_tickets[:PROMOTED_TICKETS]]),
                     f"/articles/{xss_site.article_slug}", f"/kb/articles/{xss_site.article_slug}/edit",
                     f"/kb/articles/{xss_site.article_slug}/history", f"/articles/{xss_site.promoted_slug}",
                     f"/kb/articles/{xss_site.promoted_slug}/edit"):
            watcher.visit(path)
        watcher.visit("/kb/new")  # the live preview: typed text, rendered by the server, put in the page
        preview = watcher.page.locator("#editor-preview")
        watcher.page.locator("#editor-body").fill("\n\n".join(PAYLOADS))
        expect(preview).to_contain_text("Your account is verified", timeout=TIMEOUT_MS * 2)
        watcher.audit("/kb/new (live preview)")
    finally:
        watcher.close()
    assert watcher.findings == []


def test_no_payload_runs_for_an_admin(browser, xss_site):
    watcher = Watcher(browser, xss_site, Role.ADMIN)
    try:
        for path in ("/admin/teams", "/admin/canned", f"/tickets/{xss_site.combined_ticket}", "/reports/"):
            watcher.visit(path)
    finally:
        watcher.close()
    assert watcher.findings == []


def test_the_audit_catches_a_payload_that_escapes(browser, xss_site):
    """The watcher itself: a page where a payload does run is reported (so the tests above can fail)."""
    watcher = Watcher(browser, xss_site, None)
    try:
        watcher.visit("/")
        watcher.page.evaluate("""() => {
            const box = document.createElement("div");
            box.innerHTML = '<img src="x" onerror="__xss()"><a href="javascript:__xss()">x</a>'
                + '<img src="https://evil.example/p.png">';
            document.body.append(box);
            __xss();  // what a payload that escaped would do (the CSP stops the inline handler above)
        }""")
        watcher.page.wait_for_timeout(200)
        watcher.audit("injected")
    finally:
        watcher.close()
    joined = "\n".join(watcher.findings)
    assert "payload ran on injected" in joined and "img[onerror]" in joined
    assert "a[href=javascript:__xss()]" in joined
    # The foreign image is found in the page; the Content-Security-Policy (img-src 'self') keeps the browser
    # from requesting it, else the request itself is reported.
    assert "img from https://evil.example/p.png" in joined or "request to https://evil.example/p.png" in joined
