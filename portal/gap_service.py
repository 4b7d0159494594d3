"""Embedding the unanswered questions for grouping: with the search's own multilingual model (USE when the
ranking has it, see indexer/clustering.py), each distinct text embedded once per process and kept."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from indexer.clustering import PREFERRED_BACKENDS, threshold_for

from .search import SearchService

CACHE_SIZE = 50_000  # distinct question texts kept (384-512 floats each: ~100 MB at most)


class QuestionVectors:
    """Vectors of question texts from one of the search service's embedders, cached by text."""

    def __init__(self, search: SearchService):
        self.search = search
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        embedders = self.search.embedders
        return next((b for b in PREFERRED_BACKENDS if b in embedders), next(iter(embedders)))

    @property
    def max_distance(self) -> float:
        return threshold_for(self.backend)

    def vectors(self, texts: list[str]) -> np.ndarray:
        """One unit row per text (the texts not seen before embedded in one batch)."""
        embedder = self.search.embedders[self.backend]
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = embedder.encode_queries(missing)
            with self._lock:
                for text, row in zip(missing, fresh):
                    self._cache[text] = np.asarray(row, dtype=np.float32)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
        if any(row is None for row in rows):  # evicted meanwhile by a very large period: embed those again
            rows = [row if row is not None else embedder.encode_queries([t])[0] for row, t in zip(rows, texts)]
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)


def question_vectors(app) -> QuestionVectors:
    """The app's question vectors (made on first use)."""
    if "mesa_question_vectors" not in app.extensions:
        app.extensions["mesa_question_vectors"] = QuestionVectors(app.extensions["mesa_search"])
    return app.extensions["mesa_question_vectors"]
