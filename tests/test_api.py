"""`GET /api/search`: results and errors as JSON."""

import pytest


def test_search_returns_articles_with_section_snippet_and_score(client):
    response = client.get("/api/search?q=free+up+disk+space+on+my+laptop&k=3")
    assert response.status_code == 200
    results = response.json["results"]
    assert 1 <= len(results) <= 3
    first = results[0]
    assert set(first) == {"slug", "title", "url", "lang", "category", "section", "snippet", "score", "confidence",
                          "answers", "translations", "why"}
    assert first["url"] == f"/articles/{first['slug']}"
    assert any(r["slug"] in ("laptop-disk-full", "portatil-disco-lleno") for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_each_result_says_why_it_matched(client):
    first = client.get("/api/search?q=free+up+disk+space+on+my+laptop&k=3",
                       headers={"Accept-Language": "en"}).json["results"][0]
    why = first["why"]
    assert why["section"] == first["section"]
    assert {"disk", "laptop"} <= set(why["keywords"])
    assert isinstance(why["semantic"], float) and 0 < why["semantic"] <= 1
    assert set(why["retrievers"]) == {"fake", "bm25"}
    assert sum(why["retrievers"].values()) == pytest.approx(first["score"], abs=1e-3)


def test_search_page_shows_visitors_the_words_found_but_no_numbers(client):
    page = client.get("/search?q=free+up+disk+space+on+my+laptop", headers={"Accept-Language": "en"})
    assert b"Words found:" in page.data
    assert b"Similar in meaning" not in page.data and b"Confidence" not in page.data


def test_search_page_shows_agents_the_confidence_and_cosine(client, auth):
    from portal.domain.models import Role

    auth.login(Role.AGENT_L1)
    page = client.get("/search?q=free+up+disk+space+on+my+laptop", headers={"Accept-Language": "en"})
    assert b"Words found:" in page.data and b"Similar in meaning" in page.data and b"Confidence 0." in page.data


def test_lang_filters_the_articles(client):
    results = client.get("/api/search?q=vpn&k=10&lang=es").json["results"]
    assert results and all(r["lang"] == "es" for r in results)


@pytest.mark.parametrize("query, message", [
    ("", "Type a few words"),
    ("q=%20%20", "Type a few words"),
    ("q=" + "x" * 501, "too long"),
    ("q=vpn&k=0", "'k' must be a whole number"),
    ("q=vpn&k=51", "'k' must be a whole number"),
    ("q=vpn&k=ten", "'k' must be a whole number"),
    ("q=vpn&lang=fr", "'lang' must be one of"),
])
def test_bad_input_is_a_400_with_a_json_error(client, query, message):
    response = client.get(f"/api/search?{query}", headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert message in response.json["error"]


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "error" in response.json


def test_missing_index_is_a_503_not_a_500(client, seeded_app):
    from portal.db import get_session
    from portal.domain import search_index

    with seeded_app.app_context():
        session = get_session()
        search_index.drop_generations(session, [search_index.active_generation(session).id])
        session.commit()
    seeded_app.extensions["mesa_search"]._index = None
    response = client.get("/api/search?q=vpn", headers={"Accept-Language": "en"})
    assert response.status_code == 503 and "not available" in response.json["error"]
