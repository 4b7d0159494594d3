"""The embedder interface and its choice by setting."""

import numpy as np
import pytest

from indexer.embedders import (FakeEmbedder, SentenceTransformerEmbedder, UniversalSentenceEncoderEmbedder,
                               make_embedder)
from indexer.minilm_onnx import OnnxMiniLMEmbedder


def test_fake_embedder_is_deterministic_and_normalised():
    embedder = FakeEmbedder()
    a = embedder.encode_queries(["reset my password", "printer jam"])
    b = FakeEmbedder().encode_documents(["reset my password", "printer jam"])
    assert a.dtype == np.float32 and a.shape == (2, 256)
    assert np.allclose(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    # Shared words make texts closer than unrelated ones; accents do not matter.
    q = embedder.encode_queries(["contraseña olvidada"])[0]
    near, far = embedder.encode_documents(["Contrasena olvidada: como cambiarla", "impresora atascada"])
    assert q @ near > q @ far


def test_make_embedder_picks_the_backend_without_loading_a_model():
    assert isinstance(make_embedder("use"), UniversalSentenceEncoderEmbedder)
    st = make_embedder("sentence-transformers")
    assert isinstance(st, OnnxMiniLMEmbedder) and st.model == "all-MiniLM-L6-v2-int8-onnx" and st.dim == 384
    assert st._sessions == {}  # loads (and exports, the first time) on first use, not when chosen
    torch_minilm = make_embedder("sentence-transformers", "all-MiniLM-L6-v2")  # the same weights on torch
    assert isinstance(torch_minilm, SentenceTransformerEmbedder) and torch_minilm.model == "all-MiniLM-L6-v2"
    assert torch_minilm._model is None
    assert make_embedder("sentence-transformers", "all-MiniLM-L6-v2-int8-onnx").model == st.model
    assert make_embedder("sentence-transformers", "/models/my-model").model == "/models/my-model"
    assert make_embedder("fake", "64").dim == 64
    with pytest.raises(ValueError, match="unknown embedder backend 'word2vec'"):
        make_embedder("word2vec")


def test_use_embedder_uses_every_core():
    import os

    assert UniversalSentenceEncoderEmbedder().threads == os.cpu_count()
