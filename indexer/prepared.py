"""An article made ready for the index: its chunks and, per dense retriever, its vectors.

Preparing runs the models (slow); putting a prepared article into an index does not. So a caller embeds
before it takes a lock or opens a transaction, and a process that loads an index from stored rows never
embeds at all: a ``PreparedArticle`` is exactly what such a row holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .articles import Article
from .chunking import Chunk, chunk_article, passages
from .embedders import Embedder
from .memory import release_free_memory
from .ranking import Ranking

ENCODE_BATCH = 512  # texts per model call: the model sorts a call by length, so less padding


@dataclass
class PreparedArticle:
    """One article's chunks and vectors. ``vectors[backend]`` has one row per embedded unit (a chunk, or a
    passage of one); ``owners[backend][i]`` is the ordinal of the chunk that row ``i`` belongs to."""

    article: Article
    chunks: list[Chunk]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    owners: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.article.slug


def embedding_units(unit: str, title: str, chunks: list[Chunk]) -> tuple[list[str], list[int]]:
    """The texts a dense retriever embeds for an article's chunks, and the chunk ordinal of each."""
    texts, owners = [], []
    for ordinal, chunk in enumerate(chunks):
        pieces = passages(chunk, title) if unit == "passage" else [chunk.embedding_text(title)]
        texts.extend(pieces)
        owners.extend([ordinal] * len(pieces))
    return texts, owners


def prepare_articles(articles: Iterable[Article], ranking: Ranking, embedders: dict[str, Embedder],
                     max_chars: int, batch: int = ENCODE_BATCH) -> Iterator[list[PreparedArticle]]:
    """The articles prepared in groups: each model is called once a group, on about ``batch`` texts (many
    small articles share one call). Groups come out in the order the articles came in."""
    group: list[PreparedArticle] = []
    texts = 0
    for article in articles:
        chunks = chunk_article(article, max_chars)
        group.append(PreparedArticle(article, chunks))
        texts += len(chunks)
        if texts >= batch:
            yield _embed(group, ranking, embedders)
            group, texts = [], 0
    if group:
        yield _embed(group, ranking, embedders)


def _embed(group: list[PreparedArticle], ranking: Ranking, embedders: dict[str, Embedder]) -> list[PreparedArticle]:
    for dense in ranking.dense:
        units = [embedding_units(dense.unit, p.article.title, p.chunks) for p in group]
        texts = [text for unit_texts, _ in units for text in unit_texts]
        vectors = (embedders[dense.backend].encode_documents(texts) if texts
                   else np.zeros((0, embedders[dense.backend].dim), np.float32))
        release_free_memory()
        start = 0
        for prepared, (unit_texts, owners) in zip(group, units):
            prepared.vectors[dense.backend] = np.ascontiguousarray(vectors[start:start + len(unit_texts)],
                                                                   np.float32)
            prepared.owners[dense.backend] = np.asarray(owners, np.int32)
            start += len(unit_texts)
    return group


def prepare_article(article: Article, ranking: Ranking, embedders: dict[str, Embedder],
                    max_chars: int) -> PreparedArticle:
    """One article prepared (what a publish embeds)."""
    return next(prepare_articles([article], ranking, embedders, max_chars))[0]
