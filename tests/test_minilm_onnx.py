"""The bundled MiniLM as an int8 ONNX model: exported once into a cache, offline, close to the torch model."""

import socket

import numpy as np
import pytest

import indexer.minilm_onnx as minilm_onnx
from indexer import model_cache
from indexer import FakeEmbedder, IndexMismatchError, KnowledgeIndex, read_articles
from indexer.embedders import SentenceTransformerEmbedder
from indexer.minilm_onnx import MODEL_NAME, OnnxMiniLMEmbedder, cache_dir, export_key, exported_model
from tests.conftest import ARTICLES_DIR

TEXTS = ["my laptop disk is full", "How do I reset my password?", "mi portátil no tiene espacio libre",
         "The VPN disconnects every few minutes when I work from home, although the Wi-Fi itself is fine."]


def test_the_cache_is_the_setting_or_the_users_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MESA_MODEL_CACHE", str(tmp_path / "models"))
    assert cache_dir() == tmp_path / "models"
    monkeypatch.delenv("MESA_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mesa"


def test_a_changed_export_recipe_names_another_file(monkeypatch):
    source = minilm_onnx.bundled_model_dir()
    before = export_key(source)
    monkeypatch.setattr(minilm_onnx, "EXPORT_RECIPE", minilm_onnx.EXPORT_RECIPE + 1)
    assert export_key(source) != before and len(before) == 16


def test_an_exported_file_is_reused_and_a_missing_one_is_exported_once(monkeypatch, tmp_path):
    exports = []

    def fake_export(module, source, target, model_name):
        assert module == "indexer.minilm_onnx" and model_name == MODEL_NAME
        exports.append(target)
        target.write_bytes(b"onnx")

    monkeypatch.setattr(model_cache, "_export_in_child", fake_export)
    first = exported_model(directory=tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith(MODEL_NAME) and first.read_bytes() == b"onnx"
    assert exported_model(directory=tmp_path / "cache") == first and len(exports) == 1
    first.unlink()  # the cache deleted: made again
    assert exported_model(directory=tmp_path / "cache").exists() and len(exports) == 2


def test_an_index_of_the_torch_vectors_is_refused_rather_than_mixed(tmp_path):
    torch_built = {"use": FakeEmbedder(), "sentence-transformers": FakeEmbedder(384)}
    torch_built["sentence-transformers"].model = "all-MiniLM-L6-v2"  # what the torch model's index records
    index = KnowledgeIndex.create("hybrid", torch_built)
    index.build(read_articles(ARTICLES_DIR)[:2])
    index.save(tmp_path / "index.npz")
    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2 .*all-MiniLM-L6-v2-int8-onnx.*Rebuild"):
        KnowledgeIndex.load(tmp_path / "index.npz", {"use": FakeEmbedder(), "sentence-transformers": OnnxMiniLMEmbedder()})


@pytest.fixture
def offline(monkeypatch):
    """No connection can be opened: an attempt to download anything fails the test (in the export's child
    process, through a proxy address where nothing listens)."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.real_model
def test_the_export_runs_offline_and_its_vectors_are_close_to_the_torch_models(offline, tmp_path):
    embedder = OnnxMiniLMEmbedder(cache=tmp_path / "cache")
    queries = embedder.encode_queries(TEXTS)
    exported = list((tmp_path / "cache").glob(f"{MODEL_NAME}-*.onnx"))
    assert len(exported) == 1 and exported[0].stat().st_size < 40_000_000  # int8: a quarter of the weights
    assert not list((tmp_path / "cache").glob(".export-*"))  # the scratch files are gone
    documents = embedder.encode_documents(TEXTS + ["printer " * 400])  # one past the 256-token limit
    assert queries.dtype == np.float32 and queries.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    assert np.allclose(queries, documents[:len(TEXTS)], atol=1e-5)  # one text, one vector, alone or in a batch
    reference = SentenceTransformerEmbedder("all-MiniLM-L6-v2").encode_documents(TEXTS + ["printer " * 400])
    cosines = (documents * reference).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    # The meaning survives the quantisation: the paraphrase is still the nearest.
    disk, full = embedder.encode_queries(["no space left on my notebook's drive", "the canteen menu"])
    assert float(disk @ queries[0]) > float(full @ queries[0]) + 0.2


@pytest.mark.real_model
def test_a_second_embedder_reads_the_cached_export_without_torch(offline, tmp_path):
    OnnxMiniLMEmbedder(cache=tmp_path).encode_queries(["warm"])
    exported = next(tmp_path.glob(f"{MODEL_NAME}-*.onnx"))
    stamp = exported.stat().st_mtime_ns
    again = OnnxMiniLMEmbedder(cache=tmp_path)
    assert again.encode_queries(["vpn"]).shape == (1, 384) and exported.stat().st_mtime_ns == stamp
