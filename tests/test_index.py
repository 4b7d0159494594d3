"""The knowledge index: stable ids, add/remove/replace without a rebuild, save/load, model checks."""

import io
import os

import numpy as np
import pytest

from indexer import (Article, FakeEmbedder, IndexMismatchError, IndexMissingError, KnowledgeIndex,
                     read_articles)
from indexer.store import VectorStore
from tests.conftest import ARTICLES_DIR


def fake_embedders():
    return {"fake": FakeEmbedder()}


def article(slug, title, body, lang="en", visibility="public"):
    return Article(slug=slug, title=title, lang=lang, body=body, visibility=visibility)


@pytest.fixture
def small_index():
    index = KnowledgeIndex.create("fake", fake_embedders())
    index.build([
        article("vpn", "VPN connection", "## Fix\n\nRestart the VPN client and sign in again."),
        article("printer", "Printer jammed", "## Fix\n\nOpen the tray and remove the paper."),
        article("wifi", "Wi-Fi guest network", "## Fix\n\nJoin the guest network with the daily code."),
    ])
    return index


def test_store_keeps_the_ids_it_was_given():
    store = VectorStore(4)
    vectors = np.eye(4, dtype=np.float32)
    store.add(np.array([10, 20, 30, 40]), vectors)
    assert store.remove([20]) == 1
    scores, ids = store.search(vectors[2:3], 2)
    assert ids[0][0] == 30 and scores[0][0] == pytest.approx(1.0)
    assert 20 not in ids[0]
    with pytest.raises(ValueError, match="dimension 4"):
        store.add(np.array([1]), np.ones((1, 3), dtype=np.float32))


def test_search_returns_distinct_articles_best_first(small_index):
    hits = small_index.search("the printer paper is jammed", k=3)
    assert hits[0].slug == "printer"
    assert hits[0].heading == "Fix"
    assert len({h.slug for h in hits}) == len(hits)
    assert hits[0].score >= hits[-1].score


def test_upsert_adds_and_replaces_one_article_without_rebuild(small_index):
    chunk_ids_before = list(small_index.articles["vpn"].chunk_ids)
    assert small_index.upsert(article("mfa", "Authenticator app", "## Fix\n\nScan the QR code again.")) is True
    assert small_index.search("authenticator QR code", k=1)[0].slug == "mfa"
    # Unchanged content is not re-embedded.
    assert small_index.upsert(article("mfa", "Authenticator app", "## Fix\n\nScan the QR code again.")) is False
    # Replacing changes what is found, and other articles keep their ids.
    small_index.upsert(article("mfa", "Authenticator app", "## Fix\n\nUse the backup codes printed earlier."))
    assert small_index.search("backup codes", k=1)[0].slug == "mfa"
    assert small_index.articles["vpn"].chunk_ids == chunk_ids_before
    assert small_index.stores["fake"].count == len(small_index.chunks)


def test_remove_takes_an_article_out_of_results(small_index):
    assert small_index.remove("printer") is True
    assert small_index.remove("printer") is False
    assert "printer" not in [h.slug for h in small_index.search("printer jammed paper", k=5)]
    assert small_index.stores["fake"].count == len(small_index.chunks)


def test_filters_by_language_and_visibility():
    index = KnowledgeIndex.create("fake", fake_embedders())
    index.build([article("vpn-en", "VPN", "VPN client"), article("vpn-es", "VPN", "cliente VPN", lang="es"),
                 article("vpn-internal", "VPN", "VPN client admin", visibility="internal")])
    assert {h.slug for h in index.search("VPN", k=5, lang="es")} == {"vpn-es"}
    public = index.search("VPN", k=5, allow=lambda entry: entry.visibility == "public")
    assert {h.slug for h in public} == {"vpn-en", "vpn-es"}


def test_save_and_load_give_the_same_results(small_index, tmp_path):
    path = tmp_path / "index.npz"
    small_index.save(path)
    loaded = KnowledgeIndex.load(path, fake_embedders())
    assert [h.slug for h in loaded.search("guest network code", k=3)] == \
        [h.slug for h in small_index.search("guest network code", k=3)]
    # Ids stay stable across a reload: new chunks never reuse old ids.
    loaded.upsert(article("new", "New", "Brand new text"))
    assert min(loaded.articles["new"].chunk_ids) >= small_index.next_id
    info = KnowledgeIndex.read_info(path)
    assert info["ranking"] == "fake" and info["fields"]["fake"] == {"model": "fake-256", "dim": 256, "unit": "section"}
    assert info["articles"] == 3 and info["chunks"] == info["vectors"]["fake"] == 3 and info["built_at"]


def test_an_index_built_with_another_model_is_refused(small_index, tmp_path):
    path = tmp_path / "index.npz"
    small_index.save(path)
    with pytest.raises(IndexMismatchError, match="built with fake / fake-256 .* configuration has fake / fake-64"):
        KnowledgeIndex.load(path, {"fake": FakeEmbedder(dim=64)})
    with pytest.raises(IndexMismatchError, match="configuration has no such model"):
        KnowledgeIndex.load(path, {"use": FakeEmbedder()})


def test_a_missing_or_corrupt_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="No index at"):
        KnowledgeIndex.load(tmp_path / "none.npz", fake_embedders())
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(IndexMissingError, match="cannot be read"):
        KnowledgeIndex.load(tmp_path / "bad.npz", fake_embedders())


def test_an_index_whose_vectors_are_damaged_is_a_clear_error(small_index, tmp_path):
    path = tmp_path / "index.npz"
    small_index.save(path)
    with np.load(path) as data:
        members = {name: data[name] for name in data.files}
    members["faiss_0"] = members["faiss_0"][:len(members["faiss_0"]) // 2]  # cut short
    np.savez(path, **members)
    with pytest.raises(IndexMissingError, match="cannot be read .*faiss_0"):
        KnowledgeIndex.load(path, fake_embedders())


def test_save_is_atomic_a_failed_write_leaves_the_old_index(small_index, tmp_path, monkeypatch):
    path = tmp_path / "index.npz"
    small_index.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    small_index.upsert(article("other", "Other", "Other text"))
    with pytest.raises(OSError):
        small_index.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["index.npz"]  # no temporary file left behind
    assert KnowledgeIndex.load(path, fake_embedders()).articles.keys() == {"vpn", "printer", "wifi"}


def test_the_starter_kb_indexes_every_published_article():
    articles = [a for a in read_articles(ARTICLES_DIR) if a.status == "published"]
    index = KnowledgeIndex.create("fake", fake_embedders())
    index.build(articles)
    assert set(index.articles) == {a.slug for a in articles}
    assert all(len(c.text) <= index.max_chars for c in index.chunks.values())


def clustered_vectors(count, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    vectors = centres[rng.integers(0, 50, count)] + 0.3 * rng.normal(size=(count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_a_large_store_switches_to_the_approximate_index_and_keeps_its_ids(monkeypatch):
    import indexer.store as store_module

    monkeypatch.setattr(store_module, "APPROXIMATE_ABOVE", 1000)
    vectors = clustered_vectors(3000)
    exact = VectorStore(32)
    exact.add(np.arange(1, 3001), vectors)
    streamed = VectorStore(32, expected=3000)  # a build announces its size: trained as it fills
    for start in range(0, 3000, 64):
        streamed.add(np.arange(1, 3001)[start:start + 64], vectors[start:start + 64])
    assert streamed.approximate and streamed.count == 3000 and not exact.approximate
    probed, streamed._index.nprobe = streamed._index.nprobe, streamed._index.nlist
    assert streamed.search(vectors, 1)[1].ravel().tolist() == list(range(1, 3001))  # all lists: each finds itself
    streamed._index.nprobe = probed
    _, exact_ids = exact.search(vectors[:100], 10)
    _, approximate_ids = streamed.search(vectors[:100], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_ids, approximate_ids)])
    assert recall >= 0.9
    assert streamed.remove([1, 2]) == 2 and streamed.count == 2998
    streamed.add(np.array([5000]), vectors[:1])
    saved = io.BytesIO()
    streamed.write(saved)
    assert len(saved.getvalue()) == streamed.serialized_size()
    loaded = VectorStore.read(io.BytesIO(saved.getvalue()), 32)
    assert loaded.approximate and loaded.search(vectors[:1], 1)[1][0][0] == 5000
    assert exact.optimise() and exact.approximate and exact.count == 3000


def test_a_store_announced_large_but_filled_small_stays_exact(monkeypatch):
    import indexer.store as store_module

    monkeypatch.setattr(store_module, "APPROXIMATE_ABOVE", 1000)
    store = VectorStore(32, expected=5000)
    store.add(np.arange(1, 201), clustered_vectors(200))
    assert store.count == 200 and not store.approximate


def test_a_large_index_runs_bm25_beside_the_dense_search_with_the_same_results(monkeypatch):
    import threading

    import indexer.index as index_module

    index = KnowledgeIndex.create("fake", fake_embedders())
    index.build(read_articles(ARTICLES_DIR))
    queries = ["my printer is jammed", "no puedo conectarme a la VPN", "reset password",
               "impresora", "Outlook"]
    serial = [index.search(q, k=5) for q in queries]
    threads = []
    original = KnowledgeIndex._lexical_candidates

    def recording(self, *args):
        threads.append(threading.current_thread().name)
        return original(self, *args)

    monkeypatch.setattr(KnowledgeIndex, "_lexical_candidates", recording)
    monkeypatch.setattr(index_module, "CONCURRENT_LEXICAL_MIN", 1)  # as if the index were large
    internal_only = index.search("VPN", k=50, allow=lambda entry: entry.visibility == "internal")
    side_by_side = [index.search(q, k=5) for q in queries]
    assert side_by_side == serial
    assert internal_only and all(hit.visibility == "internal" for hit in internal_only)
    assert len(threads) == len(queries) + 1 and all(name.startswith("mesa-search") for name in threads)


class ReleasingFakeEmbedder(FakeEmbedder):
    """A fake embedder that records when the index lets go of it and what it embedded after that."""

    def __init__(self):
        super().__init__()
        self.events = []

    def encode_documents(self, texts):
        self.events.append("documents")
        return super().encode_documents(texts)

    def encode_queries(self, texts):
        self.events.append("queries")
        return super().encode_queries(texts)

    def release(self):
        self.events.append("release")


def test_a_build_only_process_lets_go_of_each_model_once_its_vectors_are_made():
    articles = [a for a in read_articles(ARTICLES_DIR) if a.status == "published"]
    kept = KnowledgeIndex.create("fake", {"fake": ReleasingFakeEmbedder()})
    kept.build(articles)
    embedder = ReleasingFakeEmbedder()
    released = KnowledgeIndex.create("fake", {"fake": embedder})
    released.build(articles, release_models=True)
    assert "release" not in kept.embedders["fake"].events
    assert embedder.events[-1] == "release" and embedder.events.count("release") == 1
    assert set(embedder.events[:-1]) == {"documents"}
    # Searching afterwards uses the model again and finds the same articles.
    query = "no puedo conectarme a la VPN"
    assert [h.slug for h in released.search(query, k=5)] == [h.slug for h in kept.search(query, k=5)]
    assert embedder.events[-1] == "queries"
