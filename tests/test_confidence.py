"""Confidence: a fitted probability that a result answers the query, and the threshold below which it does not."""

import json

import pytest

from indexer import FakeEmbedder, KnowledgeIndex, read_articles
from indexer.confidence import (Calibration, PairModel, auroc, calibration_path, load_calibration,
                                save_calibration)
from indexer.evaluate import calibrate, confidence_metrics, evaluate_pack, read_queries, run_queries
from indexer.ranking import get_ranking
from tests.conftest import ARTICLES_DIR, BENCH_DIR


@pytest.fixture(scope="module")
def starter_index():
    """The starter KB's published articles with the fake ranking and its shipped calibration."""
    index = KnowledgeIndex.create("fake", {"fake": FakeEmbedder()})
    index.build([a for a in read_articles(ARTICLES_DIR) if a.status == "published"])
    return index


def test_the_fake_ranking_ships_a_calibration_for_its_model(starter_index):
    assert starter_index.calibration is not None
    assert starter_index.calibration.signature == starter_index.signature()
    assert 0 < starter_index.calibration.threshold < 1
    assert starter_index.meta["confidence"]["threshold"] == starter_index.calibration.threshold


def test_an_exact_title_is_a_confident_answer(starter_index):
    best = starter_index.search("Your laptop disk is full: free up space", k=3)[0]
    assert best.slug == "laptop-disk-full"
    assert best.confidence >= starter_index.calibration.threshold


@pytest.mark.parametrize("gibberish", ["xqzv plork", "asdfgh qwerty zxcvb", "lorem ipsum dolor sit amet"])
def test_gibberish_is_not_an_answer(starter_index, gibberish):
    hits = starter_index.search(gibberish, k=3)
    assert all(hit.confidence < starter_index.calibration.threshold for hit in hits)


def test_a_question_whose_answer_is_left_out_falls_below_the_threshold(starter_index):
    query = "I forgot my password"
    answers = ("reset-your-password", "restablecer-contrasena")
    with_answer = starter_index.search(query, k=3)
    assert with_answer[0].slug in answers
    without = starter_index.search(query, k=3, allow=lambda e: e.slug not in answers)
    assert without[0].confidence < starter_index.calibration.threshold < with_answer[0].confidence


def test_confidences_are_probabilities_and_the_first_result_is_the_most_confident_of_a_clear_query(starter_index):
    hits = starter_index.search("reset your password", k=5)
    assert all(0.0 <= hit.confidence <= 1.0 for hit in hits)
    assert hits[0].confidence == max(hit.confidence for hit in hits)


def test_calibration_is_saved_with_the_index_and_loaded_back(starter_index, tmp_path):
    starter_index.save(tmp_path / "index.npz")
    loaded = KnowledgeIndex.load(tmp_path / "index.npz", {"fake": FakeEmbedder()})
    assert loaded.calibration.to_dict() == starter_index.calibration.to_dict()
    assert KnowledgeIndex.read_info(tmp_path / "index.npz")["confidence"]["signature"] == starter_index.signature()
    query = "printer jam"
    assert [h.confidence for h in loaded.search(query)] == [h.confidence for h in starter_index.search(query)]


def test_a_calibration_fitted_for_other_models_is_not_used(tmp_path):
    model = PairModel(["fused_margin"], [0.0], [1.0], [1.0], 0.0)
    save_calibration(Calibration("fake|fake=fake-64", {"en>en": model}, 0.5), "fake", tmp_path)
    assert load_calibration("fake", "fake|fake=fake-64", tmp_path) is not None
    assert load_calibration("fake", "fake|fake=fake-256", tmp_path) is None
    assert load_calibration("hybrid", "anything", tmp_path) is None


def test_an_index_without_calibration_gives_no_confidence():
    index = KnowledgeIndex.create("fake", {"fake": FakeEmbedder(dim=64)})  # no calibration for 64 dimensions
    index.build(read_articles(ARTICLES_DIR)[:5])
    assert index.calibration is None
    assert all(hit.confidence is None for hit in index.search("password"))


def test_a_pair_without_its_own_model_uses_its_mirror():
    models = {"es>en": PairModel(["x"], [0.0], [1.0], [2.0], 0.0)}
    calibration = Calibration("s", models, 0.5)
    assert calibration.model_for("en>es") is models["es>en"]
    assert calibration.model_for("es>es") is models["es>en"]  # a model of the query's language
    assert calibration.model_for("en>en") is None


def test_auroc_counts_pairs_in_order_and_ties_as_half():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None


def test_calibrating_on_a_pack_separates_answers_from_answer_removed_searches(tmp_path):
    ranking = get_ranking("fake")
    calibration, report = calibrate([BENCH_DIR / "faq-en"], ranking, {"fake": FakeEmbedder()})
    assert calibration.signature == "fake|fake=fake-256" and set(calibration.models) == {"en>en"}
    (figures,) = report
    assert figures["auroc"] > 0.85  # on the held-out half
    assert figures["kept"] >= 0.9 and figures["abstain"] > 0.3
    path = save_calibration(calibration, "fake", tmp_path)
    assert json.loads(path.read_text())["threshold"] == calibration.threshold
    assert path == calibration_path("fake", tmp_path)


def test_a_query_only_a_draft_answers_counts_as_unanswerable(tmp_path):
    pack = tmp_path / "pack"
    (pack / "articles").mkdir(parents=True)
    for slug, status in (("vpn", "published"), ("voicemail", "draft")):
        (pack / "articles" / f"{slug}.md").write_text(
            f'---\ntitle: "{slug} help"\nlang: en\ntags: []\nstatus: {status}\n---\n\n{slug} steps.\n',
            encoding="utf-8")
    (pack / "queries.jsonl").write_text(json.dumps(
        {"id": "q1", "query": "voicemail help", "lang": "en", "relevant": ["voicemail"], "kind": "short"}) + "\n")
    index = KnowledgeIndex.create("fake", {"fake": FakeEmbedder()})
    index.build([a for a in read_articles(pack) if a.status == "published"])
    (run,) = run_queries(index, read_queries(pack))
    assert run.query.relevant == [] and run.removed == run.full[:3]


def test_evaluation_reports_confidence_and_figures_per_kind(tmp_path):
    result = evaluate_pack(BENCH_DIR.parent / "starter", "fake", {"fake": FakeEmbedder()})
    assert {"short", "typo", "symptom", "long", "cross", "none"} <= set(result["kinds"])
    confidence = result["confidence"]
    assert 0 <= confidence["auroc"] <= 1 and confidence["unanswerable"] > 0
    assert result["kinds"]["none"]["confidence"]["correct"] == 0  # nothing answers those


def test_confidence_metrics_need_a_calibration():
    assert confidence_metrics([], None) == {}


def test_an_articles_margin_is_over_another_topic_not_over_its_own_translation():
    from indexer.confidence import result_features
    from indexer.ranking import Proposal

    proposals = {"use": Proposal({"vpn-en": (0.80, -1), "vpn-es": (0.79, -1), "printer": (0.50, -1)})}
    topics = {"vpn-en": "vpn", "vpn-es": "vpn", "printer": ""}
    (row,) = result_features([("vpn-en", 2.0)], proposals, {"vpn-en": ["use"]}, {}, 4, topics.get)
    assert row["use_margin"] == pytest.approx(0.30)  # over the printer article, not over vpn-es
    (alone,) = result_features([("vpn-en", 2.0)], proposals, {"vpn-en": ["use"]}, {}, 4)
    assert alone["use_margin"] == pytest.approx(0.01)
