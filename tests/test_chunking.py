"""Chunking by sections with a size bound."""

from indexer.articles import Article
from indexer.chunking import chunk_article, markdown_to_text


def make(body: str) -> Article:
    return Article(slug="a", title="Title", lang="en", body=body)


def test_one_chunk_per_section_with_its_heading():
    chunks = chunk_article(make("Intro text.\n\n## Symptoms\n\nIt fails.\n\n## Solution\n\n1. Restart.\n"))
    assert [(c.heading, c.text) for c in chunks] == [("", "Intro text."), ("Symptoms", "It fails."),
                                                     ("Solution", "Restart.")]
    assert all(c.slug == "a" for c in chunks)
    assert [c.ordinal for c in chunks] == [0, 1, 2]


def test_long_sections_are_split_under_the_bound():
    paragraph = " ".join(f"Sentence number {i} explains one more step." for i in range(60))
    chunks = chunk_article(make(f"## Long\n\n{paragraph}\n\n{paragraph}\n"), max_chars=300)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(c.heading == "Long" for c in chunks)
    # Nothing is lost: every word of the section is in some chunk.
    assert " ".join(c.text for c in chunks).split() == f"{paragraph} {paragraph}".split()


def test_a_word_longer_than_the_bound_is_cut():
    chunks = chunk_article(make("x" * 1000), max_chars=300)
    assert all(len(c.text) <= 300 for c in chunks)
    assert "".join(c.text for c in chunks) == "x" * 1000


def test_headings_inside_code_blocks_are_not_sections():
    chunks = chunk_article(make("## Real\n\n```\n## not a heading\n```\n"))
    assert [c.heading for c in chunks] == ["Real"]


def test_an_empty_article_is_still_findable_by_title():
    chunks = chunk_article(make(""))
    assert len(chunks) == 1 and chunks[0].text == "Title"


def test_markdown_syntax_is_stripped_for_embedding():
    text = markdown_to_text("1. Open **Settings** > [Security](https://x.example) and `ipconfig`\n- item")
    assert text == "Open Settings > Security and ipconfig\nitem"


def test_embedding_text_carries_title_and_heading():
    chunk = chunk_article(make("## Steps\n\nDo it."))[0]
    assert chunk.embedding_text("Reset password") == "Reset password. Steps. Do it."
