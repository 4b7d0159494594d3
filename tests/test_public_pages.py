"""Public pages: home, search, categories, articles, sanitising, language."""

import re

import pytest

from portal.db import get_session
from portal.domain import articles as article_service
from portal.domain.markdown_render import render_markdown
from portal.domain.models import Role
from indexer import Article


def test_home_shows_search_box_and_categories(client):
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'name="q"' in page.text
    assert "VPN and remote access" in page.text
    assert "/categories/vpn" in page.text


def test_search_page_lists_title_category_snippet_and_language(client):
    page = client.get("/search?q=restart+the+vpn+client+from+home", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "/articles/vpn-connect-from-home" in page.text or "/articles/vpn-conectar-desde-casa" in page.text
    assert 'class="hit-snippet"' in page.text
    assert 'class="badge badge-lang"' in page.text


def test_empty_search_goes_home_and_overlong_search_is_a_clear_400(client):
    assert client.get("/search?q=").status_code == 302
    page = client.get("/search?q=" + "a" * 501, headers={"Accept-Language": "en"})
    assert page.status_code == 400
    assert "too long" in page.text


def test_article_page_renders_markdown(client):
    page = client.get("/articles/laptop-disk-full")
    assert page.status_code == 200
    assert "<h2>" in page.text and "<li>" in page.text


def test_unknown_article_is_404_with_a_message(client):
    page = client.get("/articles/no-such-article", headers={"Accept-Language": "en"})
    assert page.status_code == 404
    assert "There is no article" in page.text


@pytest.mark.parametrize("role, status", [
    (None, 404), (Role.CUSTOMER, 404), (Role.AGENT_L1, 200), (Role.AGENT_L2, 200), (Role.ADMIN, 200)])
def test_internal_articles_are_for_agents_only(client, auth, role, status):
    auth.login(role)
    assert client.get("/articles/unlock-account-active-directory-l2").status_code == status
    assert client.get("/articles/docking-station-external-monitor").status_code == status  # a draft


def test_customers_never_get_internal_articles_in_search(client, auth):
    query = "/api/search?q=unlock+account+active+directory&k=50"
    anonymous = {r["slug"] for r in client.get(query).json["results"]}
    assert "unlock-account-active-directory-l2" not in anonymous
    auth.login(Role.CUSTOMER)
    assert "unlock-account-active-directory-l2" not in {r["slug"] for r in client.get(query).json["results"]}
    auth.logout()
    auth.login(Role.AGENT_L1)
    assert "unlock-account-active-directory-l2" in {r["slug"] for r in client.get(query).json["results"]}


def test_category_page_lists_only_readable_articles(client):
    page = client.get("/categories/hardware")
    assert page.status_code == 200
    assert "/articles/laptop-disk-full" in page.text
    assert "/articles/preparar-portatil-sustitucion-agentes" not in page.text  # internal
    assert client.get("/categories/no-such-category").status_code == 404


def test_script_in_an_article_never_reaches_the_browser(seeded_app):
    evil = Article(slug="evil", title="<script>alert('t')</script>", lang="en", body=(
        "Hello <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
        "[click](javascript:alert(3))\n\n<a href=\"#\" onclick=\"alert(4)\">x</a>\n"))
    with seeded_app.app_context():
        article_service.import_articles(get_session(), [evil])
        get_session().commit()
    page = seeded_app.test_client().get("/articles/evil")
    assert page.status_code == 200
    body = page.text
    assert "<script>alert" not in body
    # Raw HTML in Markdown is shown as text: no tag of the page carries a handler or a javascript: link.
    assert not re.search(r"<[a-z][^<>]*\son[a-z]+\s*=", body) and not re.search(r"href=[\"']?javascript:", body)
    assert "&lt;img src=x onerror=alert(2)&gt;" in body
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in body  # the title is escaped, not dropped


def test_render_markdown_keeps_ordinary_formatting():
    html = render_markdown("## Steps\n\n1. **Open** [portal](https://mesa.example)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h2>Steps</h2>" in html and "<strong>Open</strong>" in html
    assert 'href="https://mesa.example"' in html and "<table>" in html


def test_browser_language_picks_the_ui_language_and_the_switch_overrides(client):
    assert "¿En qué podemos ayudarte?" in client.get("/", headers={"Accept-Language": "es-ES,es;q=0.9"}).text
    assert "How can we help?" in client.get("/", headers={"Accept-Language": "en-GB"}).text
    switched = client.get("/language/en?next=/categories/vpn", headers={"Accept-Language": "es"})
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/categories/vpn")
    assert "How can we help?" in client.get("/", headers={"Accept-Language": "es"}).text
    assert client.get("/language/fr").status_code == 404


def test_language_switch_refuses_off_site_redirects(client):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.get(f"/language/es?next={target}")
        assert response.headers["Location"] == "/"


def test_the_error_page_answers_even_when_the_database_is_unreachable(client, auth, seeded_app, tmp_path):
    from sqlalchemy import create_engine

    auth.login(Role.CUSTOMER)
    unreachable = create_engine(f"sqlite:///{tmp_path / 'gone' / 'mesa.db'}")
    seeded_app.extensions["mesa_db"].configure(bind=unreachable)
    try:
        page = client.get("/", headers={"Accept-Language": "en"})
    finally:
        unreachable.dispose()
    assert page.status_code == 500 and "Something went wrong on our side" in page.text
