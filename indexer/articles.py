"""Knowledge-base articles as Markdown files with YAML front matter.

The format is the one of the retrieval benchmark packs (``bench/packs``), extended with
``category``, ``visibility`` and ``status``:

    ---
    title: "Connect to the VPN from home"
    lang: en
    category: vpn
    topic: vpn-from-home
    tags: ["vpn", "remote work"]
    visibility: public
    status: published
    ---

    Markdown body...

``topic`` (optional) links the versions of one article in several languages: the Spanish and the English
article on one subject share it, and search shows the topic once.

``format_article`` writes exactly this canonical form, so reading and writing a canonical file
gives back the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LANGUAGES = ("es", "en")
VISIBILITIES = ("public", "internal")
STATUSES = ("draft", "review", "published", "archived")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# The longest slug, title and category a knowledge base may hold (the portal's database columns).
MAX_SLUG, MAX_TITLE, MAX_CATEGORY, MAX_TOPIC = 200, 300, 60, 80
DEFAULT_CATEGORY = "general"


class ArticleFormatError(ValueError):
    """An article file that cannot be read; the message names the file and the problem."""


@dataclass
class Article:
    """One knowledge-base article, independent of where it is stored."""

    slug: str
    title: str
    lang: str
    body: str
    category: str = DEFAULT_CATEGORY
    tags: list[str] = field(default_factory=list)
    visibility: str = "public"
    status: str = "published"
    topic: str = ""  # shared by the versions of one article in other languages ("" : none)

    def content_hash(self) -> str:
        """A hash of everything the file holds, to tell an unchanged article from an edited one."""
        return hashlib.sha256(format_article(self).encode("utf-8")).hexdigest()


def validate_article(article: Article, source: str = "article") -> None:
    """Raise ArticleFormatError if a field is out of its allowed values."""

    def fail(message: str) -> None:
        raise ArticleFormatError(f"{source}: {message}")

    if not SLUG_RE.match(article.slug or ""):
        fail(f"slug {article.slug!r} must use only a-z, 0-9 and '-'")
    if len(article.slug) > MAX_SLUG:
        fail(f"the slug (file name) is too long: at most {MAX_SLUG} characters, not {len(article.slug)}")
    if not isinstance(article.title, str) or not article.title.strip():
        fail("'title' must be a non-empty string")
    if len(article.title) > MAX_TITLE:
        fail(f"'title' is too long: at most {MAX_TITLE} characters, not {len(article.title)}")
    if article.lang not in LANGUAGES:
        fail(f"'lang' must be one of {', '.join(LANGUAGES)}, not {article.lang!r}")
    if not isinstance(article.category, str) or not CATEGORY_RE.match(article.category):
        fail(f"'category' must be a lowercase id (a-z, 0-9, '-'), not {article.category!r}")
    if len(article.category) > MAX_CATEGORY:
        fail(f"'category' is too long: at most {MAX_CATEGORY} characters, not {len(article.category)}")
    if not isinstance(article.topic, str) or (article.topic and not CATEGORY_RE.match(article.topic)):
        fail(f"'topic' must be a lowercase id (a-z, 0-9, '-'), not {article.topic!r}")
    if len(article.topic) > MAX_TOPIC:
        fail(f"'topic' is too long: at most {MAX_TOPIC} characters, not {len(article.topic)}")
    if not isinstance(article.tags, list) or not all(isinstance(t, str) for t in article.tags):
        fail("'tags' must be a list of strings")
    if article.visibility not in VISIBILITIES:
        fail(f"'visibility' must be one of {', '.join(VISIBILITIES)}, not {article.visibility!r}")
    if article.status not in STATUSES:
        fail(f"'status' must be one of {', '.join(STATUSES)}, not {article.status!r}")


def parse_article(text: str, slug: str, source: str | None = None) -> Article:
    """Parse the text of one article file; errors name ``source`` (the file) and what is wrong."""
    source = source or f"{slug}.md"
    if "\x00" in text:  # a database cannot store it (PostgreSQL text refuses NUL)
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ArticleFormatError(f"{source}: line {line} contains a NUL character (\\0)")
    text = text.replace("\r\n", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ArticleFormatError(f"{source}: the file must start with a '---' line (YAML front matter)")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ArticleFormatError(f"{source}: the front matter has no closing '---' line") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (front matter line {mark.line + 1})" if mark else ""
        raise ArticleFormatError(f"{source}: the front matter is not valid YAML{where}: "
                                 f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(meta, dict):
        raise ArticleFormatError(f"{source}: the front matter must be a mapping of keys to values")
    for key in ("title", "lang"):
        if key not in meta:
            raise ArticleFormatError(f"{source}: the front matter has no '{key}'")
    body_lines = lines[end + 1:]
    if body_lines and body_lines[0] == "":
        body_lines = body_lines[1:]
    body = "\n".join(body_lines).rstrip("\n") + "\n"
    tags = meta.get("tags") or []
    article = Article(
        slug=slug,
        title=meta["title"] if isinstance(meta["title"], str) else str(meta["title"]),
        lang=str(meta["lang"]),
        body=body,
        category=meta.get("category") or DEFAULT_CATEGORY,
        tags=[str(t) for t in tags] if isinstance(tags, list) else tags,
        visibility=meta.get("visibility") or "public",
        status=meta.get("status") or "published",
        topic=str(meta.get("topic") or ""),
    )
    validate_article(article, source)
    return article


def format_article(article: Article) -> str:
    """Write the canonical file text of an article."""
    tags = ", ".join(json.dumps(t, ensure_ascii=False) for t in article.tags)
    return (
        "---\n"
        f"title: {json.dumps(article.title, ensure_ascii=False)}\n"
        f"lang: {article.lang}\n"
        f"category: {article.category}\n"
        + (f"topic: {article.topic}\n" if article.topic else "")
        + f"tags: [{tags}]\n"
        f"visibility: {article.visibility}\n"
        f"status: {article.status}\n"
        "---\n"
        "\n"
        f"{article.body.rstrip(chr(10))}\n"
    )


def read_article(path: Path) -> Article:
    """Read one ``<slug>.md`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArticleFormatError(f"{path}: not UTF-8 text") from None
    return parse_article(text, slug=path.stem, source=str(path))


def read_articles(directory: Path) -> list[Article]:
    """Read every ``*.md`` article in a directory (or in its ``articles/`` folder, for a bench pack)."""
    directory = Path(directory)
    if (directory / "articles").is_dir():
        directory = directory / "articles"
    if not directory.is_dir():
        raise ArticleFormatError(f"{directory}: not a directory")
    return [read_article(p) for p in sorted(directory.glob("*.md")) if p.name.lower() != "readme.md"]


def write_article(directory: Path, article: Article) -> Path:
    """Write an article as ``<slug>.md`` in a directory."""
    path = Path(directory) / f"{article.slug}.md"
    path.write_text(format_article(article), encoding="utf-8", newline="\n")
    return path
