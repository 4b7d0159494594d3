"""A FAISS vector store with stable int64 ids: add, remove and search without a rebuild."""

from __future__ import annotations

import numpy as np


def _faiss():
    import faiss  # imported on use: keeps `import indexer` light

    return faiss


class VectorStore:
    """Exact inner-product search over normalised vectors, addressed by caller-chosen ids."""

    def __init__(self, dim: int):
        faiss = _faiss()
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def count(self) -> int:
        """How many vectors the store holds."""
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids (ids must not be in the store already)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids) -> int:
        """Remove the vectors with these ids; returns how many were removed."""
        ids = np.ascontiguousarray(list(ids), dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest vectors per query row; missing places have id -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        k = max(1, min(k, self.count))
        if self.count == 0:
            rows = len(vectors)
            return np.zeros((rows, 0), dtype=np.float32), np.zeros((rows, 0), dtype=np.int64)
        return self._index.search(vectors, k)

    def to_bytes(self) -> np.ndarray:
        """The FAISS index serialised as a uint8 array."""
        return _faiss().serialize_index(self._index)

    @classmethod
    def from_bytes(cls, data: np.ndarray, dim: int) -> "VectorStore":
        """Rebuild a store from ``to_bytes`` output."""
        store = cls.__new__(cls)
        store.dim = dim
        store._index = _faiss().deserialize_index(np.asarray(data, dtype=np.uint8))
        if store._index.d != dim:
            raise ValueError(f"stored FAISS index has dimension {store._index.d}, metadata says {dim}")
        return store
