"""A FAISS vector store with stable int64 ids: add, remove and search without a rebuild.

Small stores are exact (a flat inner-product index). Above ``APPROXIMATE_ABOVE`` vectors a flat scan
costs more than a few milliseconds on two cores, so ``optimise`` moves the vectors to an inverted-file
index with vectors stored as 16-bit floats (IVF-SQfp16): a query scans only the ``nprobe`` lists nearest
to it, and each vector takes half the memory. Ids stay the same; adding and removing keep working.

Why fp16 and not 8-bit codes (a quarter of the memory): on the 368k USE passage vectors of the 100k-chunk
benchmark, 8-bit codes cap recall@10 against exact search at 0.976 even when every list is scanned (they
reorder near-identical passages), while fp16 matches an uncompressed IVF: 0.982 at 1/8 of the lists,
2.7 ms a query (8-bit: 0.969, 2.9 ms).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

APPROXIMATE_ABOVE = 20_000
TRAINING_PER_LIST = 39  # FAISS's minimum of training points per list; more costs memory, not recall
PROBED_SHARE = 8  # an approximate search scans 1/8 of the lists (recall@10 0.98 at 368k vectors) ...
PROBED_MIN = 96  # ... and at least 96 of them (at 37k vectors 1/8 is 47 lists: recall 0.957; 95: 0.987)
FILL_BYTES = 32 * 2**20  # codes encoded per pass when an approximate index is filled


def _faiss():
    import faiss  # imported on use: keeps `import indexer` light

    return faiss


class VectorStore:
    """Inner-product search over normalised vectors, addressed by caller-chosen ids.

    ``expected``: how many vectors a build is about to add. Above ``APPROXIMATE_ABOVE`` the store
    writes them to a temporary file as they come and builds the approximate index from it when the
    build ends (``flush``), so a large build never holds its vectors in float32, nor twice.
    """

    def __init__(self, dim: int, expected: int = 0):
        faiss = _faiss()
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._spill: _Spill | None = _Spill(dim) if expected > APPROXIMATE_ABOVE else None

    @property
    def count(self) -> int:
        """How many vectors the store holds."""
        self.flush()
        return int(self._index.ntotal)

    def flush(self) -> None:
        """End a build: the vectors waiting in the spill file go into the index."""
        if self._spill is None:
            return
        spill, self._spill = self._spill, None
        with spill:
            if spill.count > APPROXIMATE_ABOVE:
                self._index = build_approximate(spill.blocks, spill.count, self.dim, lists_for(spill.count))
            else:  # fewer than announced: an exact index is right after all
                for ids, vectors in spill.blocks():
                    self._index.add_with_ids(vectors, ids)

    @property
    def approximate(self) -> bool:
        """Whether searches go through the approximate (IVF) index."""
        self.flush()
        return isinstance(self._index, _faiss().IndexIVF)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids (ids must not be in the store already)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if self._spill is not None:
            self._spill.append(ids, vectors)
        elif len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids) -> int:
        """Remove the vectors with these ids; returns how many were removed."""
        ids = np.ascontiguousarray(list(ids), dtype=np.int64)
        if not len(ids):
            return 0
        self.flush()
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest vectors per query row; missing places have id -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.flush()
        k = max(1, min(k, self.count))
        if self.count == 0:
            rows = len(vectors)
            return np.zeros((rows, 0), dtype=np.float32), np.zeros((rows, 0), dtype=np.int64)
        return self._index.search(vectors, k)

    def optimise(self, approximate_above: int | None = None) -> bool:
        """Switch to the approximate index once the store has grown past ``approximate_above`` vectors.

        Returns True when it switched. The lists are trained on the vectors the store holds; vectors
        added later go to their nearest list. Meant to be called after a build (and after updates).
        """
        limit = APPROXIMATE_ABOVE if approximate_above is None else approximate_above
        if self.approximate or self.count <= limit:
            return False
        ids, vectors = self.exact_contents()
        self._index = build_approximate(lambda: iter([(ids, vectors)]), len(ids), self.dim, lists_for(len(ids)))
        return True

    def exact_contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of an exact store, for rebuilding it in another form."""
        faiss = _faiss()
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        flat = faiss.downcast_index(self._index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), self.count * self.dim)
        return ids, np.array(vectors, dtype=np.float32).reshape(self.count, self.dim)

    def serialized_size(self) -> int:
        """How many bytes ``write`` writes."""
        self.flush()
        total = 0

        def count(chunk: bytes) -> int:
            nonlocal total
            total += len(chunk)
            return len(chunk)

        _faiss().write_index(self._index, _faiss().PyCallbackIOWriter(count))
        return total

    def write(self, handle: BinaryIO) -> None:
        """Serialise the FAISS index into a binary file object, piece by piece (never whole in memory:
        at 100k chunks one store is 380 MB)."""
        self.flush()
        _faiss().write_index(self._index, _faiss().PyCallbackIOWriter(handle.write))

    @classmethod
    def read(cls, handle: BinaryIO, dim: int) -> "VectorStore":
        """A store from what ``write`` wrote, read piece by piece from a binary file object."""
        faiss = _faiss()
        store = cls.__new__(cls)
        store.dim = dim
        store._spill = None
        store._index = faiss.read_index(faiss.PyCallbackIOReader(handle.read))
        if store._index.d != dim:
            raise ValueError(f"stored FAISS index has dimension {store._index.d}, metadata says {dim}")
        return store


def lists_for(count: int) -> int:
    """How many inverted lists an approximate index of ``count`` vectors gets (about 2·√n)."""
    return max(16, min(4096, int(2 * math.sqrt(count))))


def build_approximate(blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], count: int, dim: int,
                      nlist: int):
    """An IVF-SQfp16 inner-product index of the ``count`` vectors that ``blocks()`` yields as (ids, vectors)
    blocks, its lists trained on the first ones.

    ``blocks`` is called once per pass over the vectors (training, assigning each to its list, filling
    the lists a group at a time), so the vectors may come from a file. Each list is filled in one go, at
    its final size: FAISS adding vectors one by one grows every list by doubling, which made a 368k-vector
    index take 717 MB of memory for 362 MB of codes.
    """
    faiss = _faiss()
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    index.train(_first_rows(blocks, min(count, max(APPROXIMATE_ABOVE, TRAINING_PER_LIST * nlist)), dim))
    lists = np.concatenate([quantizer.assign(vectors, 1).ravel() for _, vectors in blocks()])
    sizes = np.bincount(lists, minlength=nlist)
    first = 0
    while first < nlist:  # lists [first, last) together hold at most FILL_BYTES of codes, or are one list
        ends = np.cumsum(sizes[first:]) * index.code_size
        last = first + max(1, int(np.searchsorted(ends, FILL_BYTES, side="right")))
        _fill_lists(index, blocks, lists, first, sizes[first:last])
        first = last
    index.nprobe = min(nlist, max(PROBED_MIN, nlist // PROBED_SHARE))
    return index


def _first_rows(blocks, count: int, dim: int) -> np.ndarray:
    """The first ``count`` vectors of ``blocks()``."""
    rows, taken = np.empty((count, dim), np.float32), 0
    for _, vectors in blocks():
        take = min(count - taken, len(vectors))
        rows[taken:taken + take] = vectors[:take]
        taken += take
        if taken == count:
            break
    return rows[:taken]


def _fill_lists(index, blocks, lists: np.ndarray, first: int, sizes: np.ndarray) -> None:
    """Encode the vectors assigned to lists ``first`` onwards (``sizes``: how many each of them gets) and add
    each list's in one call.

    Each code is encoded a block at a time straight into its place in one buffer ordered by list, so
    the group's codes are held once, not also in per-block pieces and their sorted copy.
    """
    faiss = _faiss()
    last = first + len(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    codes = np.empty((int(starts[-1]), index.code_size), np.uint8)
    ids = np.empty(int(starts[-1]), np.int64)
    filled = starts[:-1].copy()  # where each list's next code goes
    offset = 0
    for block_ids, vectors in blocks():
        assigned = lists[offset:offset + len(block_ids)]
        offset += len(block_ids)
        rows = np.flatnonzero((assigned >= first) & (assigned < last))
        if not len(rows):
            continue
        rows = rows[np.argsort(assigned[rows], kind="stable")]
        numbers = np.ascontiguousarray(assigned[rows])
        selected = np.ascontiguousarray(vectors[rows])  # named: swig_ptr does not keep it alive
        block_codes = np.empty((len(rows), index.code_size), np.uint8)
        index.encode_vectors(len(rows), faiss.swig_ptr(selected), faiss.swig_ptr(numbers),
                             faiss.swig_ptr(block_codes))
        local = numbers - first
        counts = np.bincount(local, minlength=last - first)
        rank = np.arange(len(rows)) - np.concatenate([[0], np.cumsum(counts)])[local]  # place within its list
        places = filled[local] + rank
        codes[places] = block_codes
        ids[places] = block_ids[rows]
        filled += counts
    for number in range(first, last):
        start, end = int(starts[number - first]), int(starts[number - first + 1])
        if end > start:
            index.invlists.add_entries(number, end - start, faiss.swig_ptr(ids[start:end]),
                                       faiss.swig_ptr(codes[start:end]))
    index.ntotal += len(ids)


class _Spill:
    """A large build's vectors, waiting in a temporary file (float32) until all of them are in; read back
    in blocks, any number of times."""

    BLOCK = 8_192

    def __init__(self, dim: int):
        self.dim = dim
        self.count = 0
        self._file = tempfile.TemporaryFile(prefix="mesa-vectors-")
        self._ids: list[np.ndarray] = []

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._file.write(vectors.tobytes())
        self._ids.append(ids.copy())
        self.count += len(ids)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self._file.flush()
        if len(self._ids) != 1:  # joined once: a build reads the spill several times
            self._ids = [np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)]
        ids = self._ids[0]
        row_bytes = self.dim * 4
        for start in range(0, self.count, self.BLOCK):
            rows = min(self.BLOCK, self.count - start)
            self._file.seek(start * row_bytes)
            data = self._file.read(rows * row_bytes)
            yield ids[start:start + rows], np.frombuffer(data, np.float32).reshape(rows, self.dim)

    def __enter__(self) -> "_Spill":
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()
