"""Markdown written by people renders in bounded time and never breaks a page; the sanitiser keeps user text
from drawing Mesa's own messages or fetching foreign images."""

from __future__ import annotations

import gc
import html as html_lib
import re
import time

import pytest
from flask import current_app

import indexer
from indexer.chunking import markdown_to_text
from portal.db import get_session
from portal.domain import knowledge
from portal.domain import markdown_render
from portal.domain import tickets as ticket_service
from portal.domain.markdown_render import is_local_url, render_markdown, render_with_outcome, sanitise
from portal.domain.models import Role
from tests.conftest import ARTICLES_DIR, AuthActions, csrf_token_from, user_by_role
from tests.markdown_corpus import TICKET_MAX, pathological_corpus

# CPU time (this thread's) one text of a ticket's maximum length may take to render. Mesa's own budget
# for it is about 80 ms; the margin keeps a busy machine from failing the test. Python-Markdown took
# 6 s on 8,000 `[` alone: the point is linear against quadratic (bench/markdown_cost.py has the numbers).
TICKET_TEXT_BUDGET = 0.5
ARTICLE_TEXT_BUDGET = 1.5  # the longest article text, 100,000 characters
CORPUS = pathological_corpus(TICKET_MAX)
EN = {"Accept-Language": "en"}


def cpu_seconds(function, *args):
    """(result, CPU seconds of this thread) of one call, without the garbage collector: in the full suite a
    collection over the suite's large heap can land inside the call and is not the render's own cost."""
    gc.collect()
    gc.disable()
    try:
        start = time.thread_time()
        result = function(*args)
        return result, time.thread_time() - start
    finally:
        gc.enable()


def visible_text(html: str) -> str:
    """The text a reader sees in rendered HTML, without white space."""
    return re.sub(r"\s+", "", html_lib.unescape(re.sub(r"<[^>]+>", "", html)))


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_pathological_text_renders_within_its_budget_and_loses_nothing_when_shown_plain(name):
    text = CORPUS[name]
    (html, outcome), seconds = cpu_seconds(render_with_outcome, text)
    assert seconds < TICKET_TEXT_BUDGET, f"{name}: {seconds * 1000:.0f} ms of CPU"
    assert isinstance(html, str)
    if outcome != "markdown":  # shown as plain text: every character of it is there
        assert visible_text(html) == re.sub(r"\s+", "", text.replace("\x00", "\ufffd")), name


@pytest.mark.parametrize("unit", ["[", "![", "[(", "1. ", "+ ", ">"])
def test_the_longest_article_text_renders_within_its_budget(unit):
    text = unit * (knowledge.MAX_BODY // len(unit))
    html, seconds = cpu_seconds(render_markdown_uncached, text)
    assert seconds < ARTICLE_TEXT_BUDGET and html


def render_markdown_uncached(text: str) -> str:
    markdown_render._CACHE.clear()
    return render_markdown(text)


def test_nested_list_markers_from_the_issue_no_longer_raise_and_show_as_text():
    for text in ("1. " * 1000, "+ " * 2000):
        html, outcome = render_with_outcome(text)
        assert outcome == "too deep" and html.startswith("<p>") and html.count(text.split()[0]) >= 1000


def test_ordinary_nesting_is_still_markdown():
    html, outcome = render_with_outcome("> quoted\n>\n> 1. one\n>    - a\n>      - b\n")
    assert outcome == "markdown"
    assert "<blockquote>" in html and "<ol>" in html and html.count("<ul>") == 2


def test_every_starter_article_renders_as_markdown_quickly():
    for article in indexer.read_articles(ARTICLES_DIR):
        (html, outcome), seconds = cpu_seconds(render_with_outcome, article.body)
        assert outcome == "markdown", article.slug
        assert seconds < 0.1 and "<h2>" in html, article.slug


def test_starter_lists_indented_under_a_step_render_as_nested_lists():
    body = next(a.body for a in indexer.read_articles(ARTICLES_DIR) if a.slug == "reset-your-password")
    html = render_markdown(body)
    assert re.search(r"<li>Enter a new password\. It must:\s*<ul>\s*<li>", html)


def test_tables_fenced_code_and_its_language_are_kept():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n\n```powershell\nGet-ADUser x\n```\n\n~~old~~ `ipconfig`")
    assert '<th align="left">a</th>' in html and '<td align="right">2</td>' in html and "style=" not in html
    assert '<pre><code class="language-powershell">Get-ADUser x\n</code></pre>' in html
    assert "<s>old</s>" in html and "<code>ipconfig</code>" in html


def test_raw_html_is_shown_as_text_and_classes_never_survive():
    html = render_markdown('<p class="flash flash-success">Your password was reset</p>\n\n<b>bold</b> <user>')
    assert html == ('<p>&lt;p class="flash flash-success"&gt;Your password was reset&lt;/p&gt;</p>\n'
                    "<p>&lt;b&gt;bold&lt;/b&gt; &lt;user&gt;</p>\n")
    cleaned = sanitise('<p class="flash flash-success">x</p><span class="a">y</span><code class="language-py evil">z</code>')
    assert cleaned == '<p>x</p>y<code class="language-py">z</code>'


def test_a_code_block_keeps_only_a_language_class():
    html = render_markdown("```flash flash-success\nx\n```")
    assert 'class="language-flash"' in html and "flash-success" not in html.split(">", 2)[1]


@pytest.mark.parametrize("url,local", [
    ("/attachments/1/screenshot.png", True), ("images/printer.png", True), ("/static/logo.png", True),
    ("https://evil.example/pixel.png", False), ("http://evil.example/x", False), ("//evil.example/x.png", False),
    ("/\\evil.example/x.png", False), ("/%5Cevil.example/x.png", False), ("data:image/png;base64,AAAA", False),
    ("javascript:alert(1)", False), ("/\t/evil.example/x", False), ("", False),
])
def test_only_mesas_own_addresses_count_as_local(url, local):
    assert is_local_url(url) is local


def test_images_from_elsewhere_become_links_and_mesas_own_stay_images():
    html = render_markdown("![tracker](https://evil.example/pixel.png) ![](//evil.example/p.png) "
                           "![logo](/static/logo.png) ![b64](data:image/png;base64,AAAA)")
    assert html.count("<img") == 1 and '<img src="/static/logo.png" alt="logo">' in html
    assert '<a href="https://evil.example/pixel.png" rel="noopener noreferrer nofollow">tracker</a>' in html
    assert '<a href="//evil.example/p.png" rel="noopener noreferrer nofollow">//evil.example/p.png</a>' in html
    assert "data:" not in html.replace(">b64<", "")  # the data: link keeps its text, loses its address
    assert sanitise('<img src="https://evil.example/p.png" alt="x">') == '<img alt="x">'


def test_a_renderer_failure_shows_the_text_as_plain_text(monkeypatch):
    def broken(text):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(markdown_render, "_render", broken)
    html, outcome = render_with_outcome("**hello** <b>")
    assert outcome == "error" and html == "<p>**hello** &lt;b&gt;</p>\n"


def test_the_cache_answers_a_text_again_without_rendering(monkeypatch):
    markdown_render._CACHE.clear()
    first = render_markdown("*cached once*")
    monkeypatch.setattr(markdown_render, "render_with_outcome", lambda text: pytest.fail("rendered again"))
    assert render_markdown("*cached once*") == first


def test_the_cache_stays_within_its_size():
    cache = markdown_render._RenderCache(max_chars=100)
    for i in range(20):
        cache.put(f"text {i}" * 2, "<p>x</p>")
    assert cache._chars <= 100 and cache.get("text 19" * 2) == "<p>x</p>" and cache.get("text 0" * 2) is None


# --- every page that shows user text, with the whole corpus on it --------------------------------------------

def stored(text: str) -> str:
    """The text as a form would store it (no NUL: the bad-input checks refuse it before the database)."""
    return text.replace("\x00", "").strip() or "x"


def ticket_with_the_corpus(app) -> int:
    """A ticket whose description, replies, internal notes and solution are the pathological texts."""
    with app.app_context():
        session = get_session()
        customer, agent = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        texts = [stored(t) for t in CORPUS.values()]
        ticket = ticket_service.create_ticket(session, customer, "Pathological", texts[0], "vpn", 2, 2,
                                              current_app.extensions["mesa_sla"])
        for i, text in enumerate(texts[1:]):
            ticket_service.add_reply(session, ticket, agent if i % 2 else customer, text, public=i % 4 != 1,
                                     expected_version=ticket.version)
        ticket_service.resolve(session, ticket, agent, texts[1], ticket.version)
        session.commit()
        return ticket.id


def test_the_ticket_page_with_every_pathological_text_answers_for_the_customer_and_the_agent(seeded_app):
    ticket_id = ticket_with_the_corpus(seeded_app)
    markdown_render._CACHE.clear()
    for role in (Role.CUSTOMER, Role.AGENT_L2):
        client = seeded_app.test_client()
        AuthActions(client).login(role)
        page = client.get(f"/tickets/{ticket_id}", headers=EN)
        assert page.status_code == 200, role
        assert "Pathological" in page.text and page.text.rstrip().endswith("</html>")


def test_a_pathological_reply_is_accepted_and_the_page_answers(seeded_app):
    ticket_id = ticket_with_the_corpus(seeded_app)
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    for text in ("[" * TICKET_MAX, "1. " * 1000, "+ " * 2000):
        page = client.get(f"/tickets/{ticket_id}", headers=EN)
        version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
        sent = client.post(f"/tickets/{ticket_id}/reply", headers=EN, data={
            "body": text, "version": version, "csrf_token": csrf_token_from(page.text)})
        assert sent.status_code in (302, 303), sent.text[:300]
        assert client.get(sent.headers["Location"], headers=EN).status_code == 200


def test_the_article_page_and_the_preview_answer_with_pathological_text(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        l2 = user_by_role(session, Role.AGENT_L2)
        body = "\n\n".join(stored(t)[:1900] for t in CORPUS.values())[:knowledge.MAX_BODY]
        article = knowledge.create_article(session, knowledge.ArticleDraft(title="Pathological", body=body), l2)
        knowledge.change_state(session, article, l2, "publish", article.version)
        session.commit()
        slug = article.slug
    client = seeded_app.test_client()
    AuthActions(client).login(Role.AGENT_L2)
    markdown_render._CACHE.clear()
    assert client.get(f"/articles/{slug}", headers=EN).status_code == 200
    assert client.get(f"/kb/articles/{slug}/edit", headers=EN).status_code == 200
    token = csrf_token_from(client.get("/kb/new", headers=EN).text)
    for text in list(CORPUS.values())[:12] + ["[" * knowledge.MAX_BODY]:
        preview = client.post("/kb/preview", data={"body": text, "csrf_token": token},
                              headers={**EN, "Accept": "application/json"})
        assert preview.status_code == 200 and isinstance(preview.json["html"], str)


def test_the_search_index_strips_markdown_from_pathological_text_in_linear_time():
    """Publishing an article turns its Markdown into text for the index: floods of ``[`` or ``<`` took 21 s
    at 100,000 characters with the earlier patterns (quadratic); a long article text must stay well under."""
    for name, text in pathological_corpus(knowledge.MAX_BODY).items():
        _words, seconds = cpu_seconds(markdown_to_text, text)
        assert seconds < 0.5, f"{name}: {seconds:.2f} s"
    assert markdown_to_text("See [the portal](https://x.example) and ![a screen](/s.png) <b>now</b>") == \
        "See the portal and a screen  now "
