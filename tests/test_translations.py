"""Translations as one topic: the versions of an article in Spanish and English share a topic, search lists it
once in the reader's language, and the article links to its other version."""

import pytest
from sqlalchemy import select

from indexer import Article, ArticleFormatError, FakeEmbedder, KnowledgeIndex, format_article, parse_article
from portal.domain import articles as article_service
from portal.domain.models import Article as ArticleRow, Role
from tests.conftest import AuthActions, csrf_token_from
from tests.test_knowledge import editor_form

EN, ES = {"Accept-Language": "en"}, {"Accept-Language": "es"}


def test_the_topic_is_kept_in_the_file_and_an_article_without_one_keeps_its_bytes():
    text = ('---\ntitle: "VPN"\nlang: en\ncategory: vpn\ntopic: vpn-from-home\ntags: []\n'
            'visibility: public\nstatus: published\n---\n\nBody.\n')
    article = parse_article(text, "vpn")
    assert article.topic == "vpn-from-home" and format_article(article) == text
    plain = text.replace("topic: vpn-from-home\n", "")
    assert format_article(parse_article(plain, "vpn")) == plain


def test_a_topic_must_be_a_lowercase_id():
    with pytest.raises(ArticleFormatError, match="'topic'"):
        parse_article('---\ntitle: "x"\nlang: en\ntopic: "Not An Id"\n---\n\nBody.\n', "x")


@pytest.fixture
def bilingual_index():
    index = KnowledgeIndex.create("fake", {"fake": FakeEmbedder()})
    index.build([
        Article("printer-en", "Printer jam in tray 2", "en", "Open tray 2 and remove the jammed paper.",
                topic="printer-jam"),
        Article("printer-es", "Atasco de papel en la bandeja 2", "es", "Abre la bandeja 2 y quita el papel atascado.",
                topic="printer-jam"),
        Article("printer-internal", "Printer jam: the technician's steps", "en",
                "Open tray 2, remove the jammed paper, reset the fuser.", visibility="internal", topic="printer-jam"),
        Article("vpn", "VPN error 809", "en", "The VPN client fails with error 809 on hotel networks."),
    ])
    return index


def test_a_topic_is_listed_once_in_the_readers_language(bilingual_index):
    public = lambda entry: entry.visibility == "public"  # noqa: E731
    english = bilingual_index.search("paper jammed in tray 2", k=5, allow=public, prefer_lang="en")
    spanish = bilingual_index.search("paper jammed in tray 2", k=5, allow=public, prefer_lang="es")
    assert [h.slug for h in english][0] == "printer-en" and [h.slug for h in spanish][0] == "printer-es"
    for hits, other in ((english, "printer-es"), (spanish, "printer-en")):
        assert [t["slug"] for t in hits[0].translations] == [other]
        assert sum(h.slug.startswith("printer") for h in hits) == 1  # the topic once
        assert "printer-internal" not in [t["slug"] for h in hits for t in h.translations]  # not for customers
    assert english[0].confidence == spanish[0].confidence and english[0].score == spanish[0].score


def test_without_a_preference_the_best_ranked_version_is_shown(bilingual_index):
    hits = bilingual_index.search("atasco de papel en la bandeja", k=5)
    assert hits[0].slug == "printer-es"
    assert {t["slug"] for t in hits[0].translations} == {"printer-en", "printer-internal"}


def test_removing_an_article_takes_it_out_of_its_topic(bilingual_index):
    bilingual_index.remove("printer-es")
    hits = bilingual_index.search("paper jammed in tray 2", k=5, prefer_lang="es")
    assert hits[0].slug in ("printer-en", "printer-internal")
    assert "printer-es" not in [t["slug"] for h in hits for t in h.translations]


def test_the_starter_kb_links_its_translations(db):
    rows = db.scalars(select(ArticleRow).where(ArticleRow.topic == "vpn-connect-from-home")).all()
    assert sorted(a.slug for a in rows) == ["vpn-conectar-desde-casa", "vpn-connect-from-home"]
    spanish = next(a for a in rows if a.lang == "es")
    assert [a.slug for a in article_service.other_versions(db, spanish, None)] == ["vpn-connect-from-home"]


def test_export_and_import_keep_the_topic(db, tmp_path):
    article_service.export_directory(db, tmp_path)
    assert "topic: vpn-connect-from-home\n" in (tmp_path / "vpn-conectar-desde-casa.md").read_text()
    report = article_service.import_directory(db, tmp_path)
    assert "vpn-conectar-desde-casa" in report.unchanged


def test_the_article_page_links_the_other_language(client):
    page = client.get("/articles/vpn-conectar-desde-casa", headers=ES)
    assert 'id="other-versions"' in page.text and 'href="/articles/vpn-connect-from-home"' in page.text


def test_search_shows_a_topic_once_with_a_link_to_the_other_language(client):
    page = client.get("/search?q=vpn+from+home", headers=EN)
    assert page.text.count('class="hit-title" href="/articles/vpn-connect-from-home"') == 1
    assert 'class="hit-title" href="/articles/vpn-conectar-desde-casa"' not in page.text
    assert 'hreflang="es"' in page.text


def test_an_editor_sets_the_topic(seeded_app):
    client = seeded_app.test_client()
    AuthActions(client).login(Role.AGENT_L2)
    page = client.get("/kb/articles/wifi-invitados/edit", headers=EN)
    form = {**editor_form(page.text), "topic": "guest-wifi", "csrf_token": csrf_token_from(page.text),
            "action": "save"}
    assert client.post("/kb/articles/wifi-invitados/edit", headers=EN, data=form).status_code in (302, 303)
    with seeded_app.app_context():
        from portal.db import get_session

        assert get_session().scalar(select(ArticleRow.topic).where(ArticleRow.slug == "wifi-invitados")) == "guest-wifi"
    bad = client.get("/kb/articles/wifi-invitados/edit", headers=EN)
    refused = client.post("/kb/articles/wifi-invitados/edit", headers=EN, data={
        **editor_form(bad.text), "topic": "Not An Id", "csrf_token": csrf_token_from(bad.text), "action": "save"})
    assert refused.status_code == 400 and "topic" in refused.text and 'value="Not An Id"' in refused.text
