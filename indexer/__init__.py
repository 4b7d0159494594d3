"""Mesa's indexer: read articles, chunk them, embed them and search them. No web framework here."""

from .articles import Article, ArticleFormatError, format_article, parse_article, read_articles
from .chunking import Chunk, chunk_article
from .embedders import Embedder, FakeEmbedder, make_embedder, make_embedders
from .index import KnowledgeIndex, SearchHit, content_fingerprint, ranking_signature
from .prepared import PreparedArticle
from .problems import IndexMismatchError, IndexMissingError, IndexProblem
from .language import detect_language
from .ranking import DEFAULT_RANKING, RANKINGS, Ranking, get_ranking

__all__ = [
    "Article", "ArticleFormatError", "format_article", "parse_article", "read_articles",
    "Chunk", "chunk_article", "Embedder", "FakeEmbedder", "make_embedder", "make_embedders",
    "IndexMismatchError", "IndexMissingError", "IndexProblem", "KnowledgeIndex", "PreparedArticle", "SearchHit",
    "content_fingerprint", "ranking_signature", "detect_language",
    "DEFAULT_RANKING", "RANKINGS", "Ranking", "get_ranking",
]
