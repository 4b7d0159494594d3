"""Group questions by meaning: average-linkage agglomerative clustering of their embeddings under a cosine
distance threshold, so the number of groups comes from the data. Used to turn the questions no article
answered into the topics of the articles to write (the FAQ to write).

The threshold depends on the embedding model; ``DISTANCE_THRESHOLDS`` holds the ones chosen by
`bench/gap_clusters.py` (best adjusted Rand index on wiki-es, reported on faq-en and both together). The
multilingual USE is the model to cluster with: e5's similarities are so compressed that no one threshold
fits both packs (at wiki-es's best, all of faq-en's questions fall into one group), and it embeds 8x slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Cosine distance (1 - cosine) under which two groups merge, per embedder backend (bench/gap_clusters.py).
DISTANCE_THRESHOLDS = {"use": 0.6, "e5": 0.18, "fake": 0.6}
DEFAULT_THRESHOLD = 0.5  # a backend not measured (sentence-transformers models)
# The backends to cluster with, best first (a ranking without any of them clusters with its first one).
PREFERRED_BACKENDS = ("use", "e5", "sentence-transformers", "fake")
# Above this many texts the clustering is done on a random sample's groups, then the rest joins the nearest
# group (average linkage needs the n x n distance matrix).
MAX_EXACT = 4000


@dataclass(frozen=True)
class Cluster:
    """Indices of the texts of one group, the most central first (nearest to the others on average)."""

    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.members)


def threshold_for(backend: str) -> float:
    """The distance threshold chosen for an embedder backend."""
    return DISTANCE_THRESHOLDS.get(backend, DEFAULT_THRESHOLD)


def cluster_vectors(vectors: np.ndarray, max_distance: float, seed: int = 0) -> list[Cluster]:
    """Clusters of unit-length row vectors, biggest first; every row is in exactly one (possibly alone)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    count = len(vectors)
    if count == 0:
        return []
    if count == 1:
        return [Cluster((0,))]
    # A text the model gives no direction (no words it knows: "???") has no cosine to anything: it stands alone.
    usable = np.flatnonzero(np.linalg.norm(vectors, axis=1) > 1e-6)
    groups: dict[int, list[int]] = {}
    if len(usable) == 1:
        groups[0] = [int(usable[0])]
    elif len(usable) > 1:
        for row, label in zip(usable, _labels(vectors[usable], max_distance, seed)):
            groups.setdefault(int(label), []).append(int(row))
    clusters = [Cluster(tuple(_central_first(vectors, rows))) for rows in groups.values()]
    clusters += [Cluster((int(row),)) for row in np.setdiff1d(np.arange(count), usable)]
    return sorted(clusters, key=lambda c: (-c.size, c.members[0]))


def _labels(vectors: np.ndarray, max_distance: float, seed: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    def fit(rows: np.ndarray) -> np.ndarray:
        model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                        distance_threshold=max_distance)
        return model.fit_predict(rows)

    if len(vectors) <= MAX_EXACT:
        return fit(vectors)
    sample = np.random.default_rng(seed).choice(len(vectors), MAX_EXACT, replace=False)
    sample_labels = fit(vectors[sample])
    centroids = np.stack([vectors[sample[sample_labels == label]].mean(axis=0)
                          for label in range(sample_labels.max() + 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    return np.argmax(vectors @ centroids.T, axis=1)


def _central_first(vectors: np.ndarray, rows: Sequence[int]) -> list[int]:
    """The rows ordered by their mean cosine to the group's other rows, highest first."""
    if len(rows) <= 2:
        return list(rows)
    block = vectors[list(rows)]
    closeness = (block @ block.T).mean(axis=1)
    return [rows[i] for i in np.argsort(-closeness, kind="stable")]
