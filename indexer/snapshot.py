"""An index saved as one file (a snapshot): write it atomically, read it back, read its metadata alone.

The file is an ``.npz`` (what ``np.load`` reads): the metadata as JSON, the articles and chunks as JSON,
the vector-id map and BM25's arrays as arrays, and each FAISS store serialised into a member of its own.
Large members are streamed in and out, never made whole in memory (at 100k chunks the state is 81 MB of
JSON, a store 364 MB). A reader sees the old file or the new one, never half: it is written to a temporary
name and renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .chunking import Chunk
from .embedders import Embedder
from .lexical import LexicalIndex
from .memory import release_free_memory
from .problems import IndexMismatchError, IndexMissingError
from .ranking import FALLBACK_RANKING, get_ranking, unavailable_reason
from .store import VectorStore

if TYPE_CHECKING:
    from .index import KnowledgeIndex

FORMAT_VERSION = 4  # 4: the confidence calibration is part of the metadata
COUNTS = ("articles", "chunks", "vectors", "fingerprint")  # in the saved metadata, made from the content


def write_snapshot(index: "KnowledgeIndex", path: Path) -> None:
    """Write the whole index to ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "next_id": index.next_id,
        "articles": [asdict(a) for a in index.articles.values()],
        "chunks": {str(i): asdict(c) for i, c in index.chunks.items()},
    }
    arrays = {"owners": index.owners, "head": _json_array({"meta": index.info()})}
    if index.lexical is not None:
        arrays.update(index.lexical.to_arrays())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_npz(handle, arrays, {"state": state},
                       {f"faiss_{i}": store for i, store in enumerate(index.stores.values())})
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_snapshot_info(path: Path) -> dict:
    """The saved metadata (with the counts), without loading the vectors."""
    with _open(Path(path)) as data:
        return _read_head(Path(path), data)["meta"]


def read_snapshot(path: Path, embedders: dict[str, Embedder]) -> "KnowledgeIndex":
    """The index saved at ``path``; refused if it was built with other models than ``embedders``."""
    from .index import ArticleEntry, KnowledgeIndex

    path = Path(path)
    data = _open(path)
    meta = _read_head(path, data)["meta"]
    check_models(meta, embedders, f"The index {path}")
    try:
        state = json.loads(bytes(data["state"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({exc}); rebuild it.") from None
    ranking = get_ranking(meta["ranking"])
    stores = {backend: _read_store(path, data, f"faiss_{i}", int(meta["fields"][backend]["dim"]))
              for i, backend in enumerate(meta["fields"])}
    articles = {a["slug"]: ArticleEntry(**a) for a in state["articles"]}
    chunks = {int(i): Chunk(**c) for i, c in state["chunks"].items()}
    if sum(store.count for store in stores.values()) != sum(len(a.vector_ids) for a in articles.values()):
        raise IndexMissingError(f"The index {path} is inconsistent (vectors and articles differ); rebuild it.")
    lexical = LexicalIndex.from_arrays(data) if ranking.lexical else None
    meta = {k: v for k, v in meta.items() if k not in COUNTS}
    index = KnowledgeIndex(ranking, {b: embedders[b] for b in meta["fields"]}, meta, articles, chunks,
                           int(state["next_id"]), stores, np.asarray(data["owners"], np.int64), lexical)
    del state, data
    release_free_memory()  # what parsing the state left behind
    return index


def check_models(meta: dict, embedders: dict[str, Embedder], what: str) -> None:
    """Refuse an index (its metadata ``meta``) whose ranking this machine cannot run, or whose vectors were
    made by other models than ``embedders``: mixing two models' vectors gives nonsense."""
    ranking = get_ranking(meta["ranking"])
    unavailable = unavailable_reason(ranking)
    if unavailable:
        raise IndexMismatchError(
            f"{what} was built with the {ranking.name!r} ranking, which this machine cannot run "
            f"({unavailable}). Rebuild it with another ranking (MESA_RANKING={FALLBACK_RANKING}, "
            f"`flask index build`).")
    for backend, saved in meta["fields"].items():
        embedder = embedders.get(backend)
        if embedder is None or embedder.model != saved["model"] or embedder.dim != int(saved["dim"]):
            configured = (f"{embedder.backend} / {embedder.model} ({embedder.dim} dimensions)"
                          if embedder is not None else "no such model")
            raise IndexMismatchError(
                f"{what} was built with {backend} / {saved['model']} ({saved['dim']} dimensions) "
                f"for the ranking {ranking.name!r}, but the configuration has {configured}. Rebuild it "
                f"(`flask index build` or `python -m indexer build`) instead of mixing two models' vectors.")


def _write_npz(handle, arrays: dict[str, np.ndarray], documents: dict[str, object],
               stores: dict[str, VectorStore]) -> None:
    """What ``np.savez`` writes, with JSON ``documents`` (as UTF-8 uint8 arrays) and FAISS stores streamed
    into their members instead of first made whole in memory."""
    from numpy.lib import format as npy

    def header(member, length: int) -> None:
        npy.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (length,)})

    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array(member, np.asanyarray(array), allow_pickle=False)
        for name, value in documents.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                header(member, sum(map(len, json.JSONEncoder().iterencode(value))))  # ASCII: 1 byte a char
                text = io.TextIOWrapper(member, encoding="ascii")
                json.dump(value, text)
                text.flush()
                text.detach()  # the member is closed by its own ``with``
        for name, store in stores.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                header(member, store.serialized_size())
                store.write(member)


def _read_store(path: Path, data, name: str, dim: int) -> VectorStore:
    """A FAISS store from its uint8 member of an open .npz, streamed (never whole in memory twice)."""
    from numpy.lib import format as npy

    try:
        with data.zip.open(f"{name}.npy") as member:
            version = npy.read_magic(member)
            length = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(member)[0][0]
            start = member.tell()
            store = VectorStore.read(member, dim)
            if member.tell() - start != length:
                raise ValueError("the FAISS index and its member differ in length")
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({name}: {exc}); rebuild it.") from None
    return store


def _json_array(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def _open(path: Path):
    if not path.exists():
        raise IndexMissingError(f"No index at {path}; build it with `flask index build` "
                                f"or `python -m indexer build`.")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexMissingError(f"The index {path} cannot be read ({exc}); rebuild it.") from None


def _read_head(path: Path, data) -> dict:
    """The small part of an index file: its metadata (read without the rest)."""
    try:
        head = json.loads(bytes(data["head"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        detail = "an old format" if isinstance(exc, KeyError) else f"an unreadable header ({exc})"
        raise IndexMissingError(f"The index {path} has {detail}; rebuild it.") from None
    if head.get("meta", {}).get("format") != FORMAT_VERSION:
        raise IndexMissingError(f"The index {path} has an old format; rebuild it.")
    return head
