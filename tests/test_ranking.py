"""Ranking: BM25 against the bm25s reference, standardised fusion, language awareness, metrics, tuning."""

import json

import bm25s
import numpy as np
import pytest

from indexer import Article, FakeEmbedder, KnowledgeIndex, detect_language, get_ranking
from indexer.evaluate import evaluate_pack, evaluate_with_baselines, rank_metrics, tune_weights
from indexer.lexical import LexicalIndex, query_terms, tokenize
from indexer.ranking import RANKINGS, standardise


def article(slug, title, body, lang="en"):
    return Article(slug=slug, title=title, lang=lang, body=body)


class StubEmbedder:
    """Hand-picked vectors: the query points one way, each article by its title's first word another."""

    backend = "fake"
    model = "stub"
    dim = 3
    vectors = {"Alpha": (0.85, 0.5268, 0.0), "Bravo": (0.9, 0.4359, 0.0), "Charlie": (0.0, 0.0, 1.0)}

    def _encode(self, texts):
        rows = [self.vectors.get(text.split(".")[0].split()[0], (1.0, 0.0, 0.0)) for text in texts]
        return np.asarray(rows, dtype=np.float32)

    encode_queries = encode_documents = _encode


def test_bm25_scores_equal_the_bm25s_reference():
    docs = ["I cannot connect to the VPN from home", "The printer on floor 2 is jammed again",
            "Reset your password from the portal; passwords expire every 90 days",
            "The VPN client shows error 809 when connecting from a hotel network"]
    index = LexicalIndex()
    for doc_id, text in enumerate(docs, 1):
        index.add(doc_id, text, "en")
    reference = bm25s.BM25()
    reference.index([tokenize(d, "en") for d in docs], show_progress=False)
    query = "vpn connecting error from home"
    expected = reference.get_scores(list(query_terms(query, "en")))
    assert np.allclose(index.scores(query)[1:5], expected, atol=1e-5)


def test_bm25_updates_one_document_at_a_time_and_survives_a_round_trip():
    index = LexicalIndex()
    index.add(1, "printer jammed on floor two", "en")
    index.add(2, "vpn error at home", "en")
    index.remove(1)
    index.add(3, "la impresora está atascada", "es")
    assert index.top("printer", 5)[0].tolist() == []
    assert index.top("impresoras atascadas", 5)[0].tolist() == [3]  # Spanish stems: impresor, atasc
    loaded = LexicalIndex.from_arrays(index.to_arrays())
    assert loaded.top("vpn home", 5)[0].tolist() == [2]
    assert np.allclose(loaded.scores("vpn home"), index.scores("vpn home")[:len(loaded.scores("vpn home"))])
    assert loaded.matched_words(2, "VPN error at the office") == ["vpn", "error"]


def test_a_query_is_stemmed_in_each_articles_language():
    index = LexicalIndex()
    index.add(1, "No puedo conectarme a la red", "es")
    index.add(2, "Cannot connect to the network", "en")
    # "connecting" stems to "connect" in English, "conectando" to "conect" in Spanish: each finds its own.
    assert index.top("connecting", 5)[0].tolist() == [2]
    assert index.top("conectando", 5)[0].tolist() == [1]


@pytest.mark.parametrize("text, default, expected", [
    ("no puedo conectarme a la VPN desde casa", "en", "es"),
    ("my laptop disk is full", "es", "en"),
    ("¿Cómo se llama al Jardín Sajón en polaco?", "en", "es"),
    ("VPN", "es", "es"),   # no evidence: the hint decides
    ("VPN", "en", "en"),
])
def test_detect_language_uses_the_hint_only_without_evidence(text, default, expected):
    assert detect_language(text, default) == expected


def test_standardise_pads_keyword_scores_with_the_articles_that_matched_nothing():
    z, floor = standardise([3.0, 2.9, 2.8], pad_to=100)
    assert z[0] > 5 and floor < 0  # three matches out of 100 articles stand far above the rest
    z_alone, _ = standardise([3.0, 2.9, 2.8])
    assert z_alone[0] == pytest.approx(1.2247, abs=1e-3)  # unpadded, the best of three is barely above


def test_fusion_finds_what_dense_alone_and_keywords_alone_rank_second():
    index = KnowledgeIndex.create("fake", {"fake": StubEmbedder()})
    index.build([
        article("alpha", "Alpha badge reader", "The door card reader rejects my card."),
        article("bravo", "Bravo access policy", "Who may enter the building after hours."),
        article("charlie", "Charlie door card door card reader reader", "door card reader door card reader"),
    ])
    query = "door card reader"
    dense = index.propose(query, ["fake"])["fake"].found
    keywords = index.propose(query, ["bm25"])["bm25"].found
    assert max(dense, key=lambda s: dense[s][0]) == "bravo"
    assert max(keywords, key=lambda s: keywords[s][0]) == "charlie"
    hits = index.search(query, k=3)
    assert hits[0].slug == "alpha"
    assert hits[0].keywords == ["door", "card", "reader"] and hits[0].semantic == pytest.approx(0.85, abs=1e-3)
    assert set(hits[0].retrievers) == {"fake", "bm25"}


def test_keywords_do_not_count_across_languages_in_the_multilingual_rankings():
    for name in ("hybrid", "use+bm25"):
        ranking = RANKINGS[name]
        assert ranking.weight("es", "es", "bm25") > ranking.weight("es", "en", "bm25") > 0
        assert ranking.weight("en", "es", "bm25") < ranking.weight("es", "es", "bm25")
        for pair in ("en>en", "es>es", "es>en", "en>es"):
            assert sum(ranking.weight(*pair.split(">"), r) for r in ranking.retrievers) == pytest.approx(1.0)
    hybrid = get_ranking("hybrid")
    for query_lang, article_lang in (("es", "es"), ("es", "en"), ("en", "es")):
        assert hybrid.weight(query_lang, article_lang, "sentence-transformers") == 0  # MiniLM knows no Spanish
    assert hybrid.needed("en") == ["use", "sentence-transformers", "bm25"]
    assert hybrid.needed("es") == ["use", "bm25"]  # a Spanish query never waits for the English model


@pytest.mark.parametrize("name", ["hybrid+e5", "e5-hybrid"])
def test_the_e5_rankings_never_make_a_spanish_query_wait_for_the_english_model(name):
    ranking = get_ranking(name)
    for pair in ("en>en", "es>es", "es>en", "en>es"):
        assert sum(ranking.weight(*pair.split(">"), r) for r in ranking.retrievers) == pytest.approx(1.0)
    assert "sentence-transformers" not in ranking.needed("es") and "e5" in ranking.needed("es")
    assert ranking.weight("en", "en", "sentence-transformers") > 0.5  # the best on English paraphrases


def test_an_unknown_ranking_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ranking 'magic'; choose one of hybrid"):
        get_ranking("magic")


def test_rank_metrics_on_known_rankings():
    rankings = [["a", "b"], ["x", "y", "b"], ["x"] * 10 + ["c"], []]
    relevant = [["a"], ["b"], ["c"], ["d"]]
    assert rank_metrics(rankings, relevant) == {
        "recall@1": 0.25, "recall@5": 0.5, "mrr@10": round((1 + 1 / 3) / 4, 4)}


@pytest.fixture
def tiny_pack(tmp_path):
    pack = tmp_path / "tiny"
    (pack / "articles").mkdir(parents=True)
    texts = {
        "vpn": ("VPN error 809", "The VPN client fails with error 809 on hotel networks."),
        "printer": ("Printer jam", "Open tray 2 and remove the jammed paper."),
        "password": ("Reset a password", "Use the self-service portal to choose a new password."),
    }
    for slug, (title, body) in texts.items():
        (pack / "articles" / f"{slug}.md").write_text(
            f'---\ntitle: {json.dumps(title)}\nlang: en\ntags: []\n---\n\n{body}\n', encoding="utf-8")
    queries = [("q1", "vpn fails in a hotel", "vpn"), ("q2", "paper jammed in the printer", "printer"),
               ("q3", "I forgot my password", "password"), ("q4", "tray 2 paper", "printer")]
    (pack / "queries.jsonl").write_text("".join(
        json.dumps({"id": i, "query": q, "lang": "en", "relevant": [r]}) + "\n" for i, q, r in queries))
    return pack


def test_evaluate_pack_reports_the_metrics_of_a_tiny_pack(tiny_pack):
    result = evaluate_pack(tiny_pack, "fake", {"fake": FakeEmbedder()})
    assert (result["articles"], result["queries"]) == (3, 4)
    assert result["recall@1"] == result["recall@5"] == result["mrr@10"] == 1.0
    assert result["latency_ms"]["p95"] >= result["latency_ms"]["p50"] > 0


def test_compare_adds_the_bm25_and_dense_baselines(tiny_pack, monkeypatch):
    import indexer.evaluate as evaluate

    monkeypatch.setattr(evaluate, "make_embedders",
                        lambda ranking, model="": {d.backend: FakeEmbedder() for d in ranking.dense})
    result = evaluate_with_baselines(tiny_pack, "fake", compare=True)
    assert set(result["baselines"]) == {"bm25", "dense"}
    assert result["baselines"]["bm25"]["mrr@10"] == 1.0
    assert set(result["baselines"]["dense"]) == {"recall@1", "recall@5", "mrr@10", "latency_ms"}


def test_tuning_picks_weights_per_language_pair(tiny_pack):
    best = tune_weights([tiny_pack], get_ranking("fake"), {"fake": FakeEmbedder()})
    assert set(best) == {"en>en"}
    assert best["en>en"]["mrr@10"] == 1.0 and best["en>en"]["pack"] == "tiny"
    assert sum(best["en>en"]["weights"].values()) == pytest.approx(1.0, abs=1e-2)


def test_a_dense_retrievers_scores_are_standardised_within_each_article_language():
    from indexer.ranking import MIN_PER_LANGUAGE, Proposal, standardised_scores

    n = MIN_PER_LANGUAGE
    found = {f"es{i}": (0.9 + i / 1000, -1) for i in range(n)} | {f"en{i}": (0.8 + i / 1000, -1) for i in range(n)}
    langs = {slug: slug[:2] for slug in found}
    z, floors = standardised_scores(Proposal(found), langs)
    assert z["es9"] == pytest.approx(z["en9"]) and z["es0"] == pytest.approx(z["en0"])  # a same-language bias is gone
    assert floors["es"] == pytest.approx(floors["en"])
    few = {slug: found[slug] for slug in list(found)[: n + 2]}  # two English candidates only: one list
    z, _ = standardised_scores(Proposal(few), langs)
    assert z["es0"] > z["en0"]


def test_translations_put_the_other_languages_scores_on_the_query_languages_scale():
    from indexer.ranking import align_languages

    fused = {"es-vpn": 3.0, "en-vpn": 2.0, "es-mail": 2.5, "en-mail": 1.6, "es-print": 1.0, "en-print": 0.1,
             "en-slow-vpn": 2.2, "es-laptop": 2.6}
    langs = {slug: slug[:2] for slug in fused}
    topics = {slug: slug[3:] for slug in fused if slug[3:] in ("vpn", "mail", "print")}
    shifts = align_languages(fused, langs, topics, "es", anchors=2)
    # the two best topics in both languages: their Spanish versions score 1.0 and 0.9 above their English ones;
    # only the English article without a Spanish version moves (the others count at their Spanish versions)
    assert shifts == {"en-slow-vpn": pytest.approx(0.95)}
    assert fused["en-slow-vpn"] + shifts["en-slow-vpn"] > fused["es-laptop"]  # the English-only answer now leads


def test_without_translations_or_when_the_other_language_already_scores_higher_nothing_moves():
    from indexer.ranking import align_languages

    langs = {"es-a": "es", "en-b": "en", "en-a": "en"}
    assert align_languages({"es-a": 2.0, "en-b": 1.0}, langs, {}, "es") == {}  # no topic in both languages
    assert align_languages({"es-a": 2.0, "en-b": 1.0}, langs, {"es-a": "a"}, "es") == {}
    # the English version outscores the Spanish one: a shift would only lower the query's own language
    assert align_languages({"es-a": 1.0, "en-a": 2.0, "en-b": 1.5}, langs, {"es-a": "a", "en-a": "a"}, "es") == {}
    assert align_languages({"en-a": 1.0, "en-b": 2.0}, langs, {"en-a": "a"}, "es") == {}  # one language only
    # one topic in both languages is too few to tell the scales apart from that topic's own gap
    assert align_languages({"es-a": 3.0, "en-a": 1.0, "en-b": 1.5}, langs, {"es-a": "a", "en-a": "a"}, "es") == {}


def test_a_search_shows_the_language_alignment_as_part_of_the_score():
    from dataclasses import replace

    index = KnowledgeIndex.create(replace(get_ranking("fake"), align=True), {"fake": FakeEmbedder()})
    index.build([
        Article("vpn-es", "Conectar la VPN desde casa", "es", "Abre el cliente VPN y conecta desde casa.", topic="vpn"),
        Article("vpn-en", "Connect to the VPN from home", "en", "Open the VPN client and connect from home.",
                topic="vpn"),
        Article("mail-es", "Buzón de correo lleno", "es", "Borra correos antiguos para liberar espacio.",
                topic="mail"),
        Article("mail-en", "Mailbox full", "en", "Delete old mail to free up space.", topic="mail"),
        Article("printer-en", "Printer queue stuck", "en", "Clear the print queue and restart the printer."),
    ])
    hits = index.search("no puedo conectar la vpn desde casa", k=3, prefer_lang="es")
    assert hits[0].slug == "vpn-es" and "languages" not in hits[0].retrievers  # the query's own language
    printer = next(hit for hit in hits if hit.slug == "printer-en")
    assert printer.retrievers["languages"] > 0
    assert sum(printer.retrievers.values()) == pytest.approx(printer.score, abs=1e-3)


def test_only_rankings_with_a_cross_language_retriever_are_aligned():
    assert not any(get_ranking(name).align for name in ("bm25", "sentence-transformers", "fake"))
    assert all(get_ranking(name).align for name in ("hybrid+e5", "e5-hybrid", "hybrid", "use+bm25", "use"))
