"""Mesa's indexer: read articles, chunk them, embed them and search them. No web framework here."""

from .articles import Article, ArticleFormatError, format_article, parse_article, read_articles
from .chunking import Chunk, chunk_article
from .embedders import Embedder, FakeEmbedder, make_embedder
from .index import (IndexMismatchError, IndexMissingError, IndexProblem, KnowledgeIndex, SearchHit,
                    content_fingerprint)

__all__ = [
    "Article", "ArticleFormatError", "format_article", "parse_article", "read_articles",
    "Chunk", "chunk_article", "Embedder", "FakeEmbedder", "make_embedder",
    "IndexMismatchError", "IndexMissingError", "IndexProblem", "KnowledgeIndex", "SearchHit",
    "content_fingerprint",
]
