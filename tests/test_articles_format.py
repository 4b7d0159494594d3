"""Front matter parsing and the byte-stable file format."""

import pytest

from indexer.articles import (Article, ArticleFormatError, format_article, parse_article, read_article,
                              read_articles)
from tests.conftest import ARTICLES_DIR, BENCH_DIR

GOOD = """---
title: "Reset \\"my\\" password"
lang: en
category: accounts
tags: ["password", "sso"]
visibility: internal
status: draft
---

Intro.

## Steps

1. Open the portal.
"""


def test_parse_reads_every_field():
    article = parse_article(GOOD, "reset-password")
    assert article.title == 'Reset "my" password'
    assert (article.lang, article.category, article.visibility, article.status) == (
        "en", "accounts", "internal", "draft")
    assert article.tags == ["password", "sso"]
    assert article.body.startswith("Intro.\n\n## Steps")


def test_format_gives_back_the_same_bytes():
    assert format_article(parse_article(GOOD, "reset-password")) == GOOD


def test_every_starter_article_round_trips_byte_for_byte():
    paths = sorted(ARTICLES_DIR.glob("*.md"))
    assert len(paths) >= 40
    for path in paths:
        assert format_article(read_article(path)) == path.read_text(encoding="utf-8"), path.name


def test_bench_pack_articles_get_defaults():
    articles = read_articles(BENCH_DIR / "faq-en")
    assert len(articles) == 62
    assert all(a.category == "general" and a.status == "published" and a.visibility == "public"
               for a in articles)


@pytest.mark.parametrize("text, message", [
    ("title: x\n", "must start with a '---'"),
    ("---\ntitle: x\nlang: en\n", "no closing '---'"),
    ("---\ntitle: [unclosed\nlang: en\n---\n\nBody\n", "not valid YAML"),
    ("---\nlang: en\n---\n\nBody\n", "no 'title'"),
    ("---\ntitle: \"T\"\nlang: fr\n---\n\nBody\n", "'lang' must be one of es, en"),
    ("---\ntitle: \"T\"\nlang: en\nvisibility: secret\n---\n\nBody\n", "'visibility' must be one of"),
    ("---\ntitle: \"T\"\nlang: en\ntags: 3\n---\n\nBody\n", "'tags' must be a list"),
    ("---\n- a\n- b\n---\n\nBody\n", "must be a mapping"),
    ("---\ntitle: \"T\"\nlang: en\ncategory: " + "c" * 61 + "\n---\n\nBody\n",
     "'category' is too long: at most 60 characters, not 61"),
    ("---\ntitle: \"T\"\nlang: en\n---\n\nBo\x00dy\n", "line 6 contains a NUL character"),
    ("---\ntitle: \"" + "T" * 301 + "\"\nlang: en\n---\n\nBody\n", "'title' is too long: at most 300"),
])
def test_bad_front_matter_names_the_file_and_the_problem(text, message):
    with pytest.raises(ArticleFormatError) as error:
        parse_article(text, "broken", source="kb/broken.md")
    assert str(error.value).startswith("kb/broken.md: ")
    assert message in str(error.value)


def test_bad_slug_is_refused(tmp_path):
    path = tmp_path / "Bad Name.md"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ArticleFormatError, match="slug"):
        read_article(path)


def test_a_slug_longer_than_the_database_holds_is_refused():
    with pytest.raises(ArticleFormatError, match="slug .*too long: at most 200"):
        parse_article(GOOD, "a" * 201)


def test_content_hash_changes_with_content():
    article = parse_article(GOOD, "reset-password")
    other = Article(**{**article.__dict__, "body": article.body + "More.\n"})
    assert article.content_hash() != other.content_hash()
