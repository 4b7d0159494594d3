"""Split articles into sections small enough to embed, each knowing its article and heading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .articles import Article

DEFAULT_MAX_CHARS = 1200
_HEADING_RE = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(frozen=True, slots=True)  # the index keeps one per section: 100k at the largest benchmark
class Chunk:
    """A piece of one article: the section it comes from and its plain text."""

    slug: str
    ordinal: int
    heading: str
    text: str

    def embedding_text(self, title: str) -> str:
        """What is embedded and indexed: the article title and heading give the section its context."""
        if self.heading:
            return f"{title}. {self.heading}. {self.text}"
        return f"{title}. {self.text}"


def markdown_to_text(markdown: str) -> str:
    """Strip the Markdown syntax that adds noise to embeddings and snippets, keep the words.

    Every pattern stops at the next opener it could restart on (``[``, ``(``, ``<``, a line end), so the
    time stays linear in the text (floods of ``[`` or ``<`` were quadratic: tests/test_markdown_safety.py).
    """
    text = re.sub(r"```.*?```", lambda m: m.group(0).strip("`"), markdown, flags=re.S)
    text = re.sub(r"!\[([^\[\]\n]*)\]\([^()\n]*\)", r"\1", text)   # images -> alt text
    text = re.sub(r"\[([^\[\]\n]+)\]\([^()\n]*\)", r"\1", text)     # links -> link text
    text = re.sub(r"<[^>]{1,300}>", " ", text)                       # inline HTML tags (bounded: linear)
    text = re.sub(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+", "", text, flags=re.M)  # list markers
    text = re.sub(r"^\s{0,3}>\s?", "", text, flags=re.M)             # block quotes
    text = re.sub(r"(\*\*|__|\*|_|`)", "", text)                     # emphasis, code ticks
    text = re.sub(r"^[ \t]*\|?[-:|][-:| \t]*$", "", text, flags=re.M)  # table rules
    text = text.replace("|", " ")
    return text


def _sections(body: str) -> list[tuple[str, str]]:
    """(heading, markdown) pairs; text before the first heading has an empty heading."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    in_code = False
    for line in body.split("\n"):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING_RE.match(line)
        if match:
            sections.append((match.group(2).strip(), []))
        else:
            sections[-1][1].append(line)
    return [(heading, "\n".join(lines)) for heading, lines in sections]


def _normalise_space(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def _split_to_size(text: str, max_chars: int) -> list[str]:
    """Pack paragraphs (then sentences, then words) into pieces of at most max_chars."""
    if len(text) <= max_chars:
        return [text]
    units: list[str] = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            continue
        for sentence in _SENTENCE_END_RE.split(paragraph):
            while len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > 0 else max_chars
                units.append(sentence[:cut])
                sentence = sentence[cut:].lstrip()
            if sentence:
                units.append(sentence)
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}\n\n{unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def chunk_article(article: Article, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Chunks of an article, one per section, long sections split so no chunk exceeds max_chars.

    An article with no text at all still gets one chunk (its title), so it can be found.
    """
    chunks: list[Chunk] = []
    for heading, markdown in _sections(article.body):
        text = _normalise_space(markdown_to_text(markdown))
        if not text:
            continue
        for piece in _split_to_size(text, max_chars):
            chunks.append(Chunk(article.slug, len(chunks), heading, piece))
    if not chunks:
        chunks.append(Chunk(article.slug, 0, "", article.title))
    return chunks


_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
PASSAGE_SENTENCES = 2


def passages(chunk: Chunk, title: str, sentences: int = PASSAGE_SENTENCES) -> list[str]:
    """Overlapping windows of a few sentences of a chunk, each prefixed with the article title.

    A question usually asks about one or two sentences of a section; the multilingual model matches
    it far better against such a window than against the whole section, whose meaning it averages.
    """
    parts = [s for s in _SENTENCE_RE.split(chunk.text) if s.strip()] or [chunk.text]
    windows = range(max(1, len(parts) - sentences + 1))
    return [f"{title}. {' '.join(parts[i:i + sentences])}" for i in windows]
