"""Pathological Markdown: the inputs known to make Markdown parsers slow (quadratic or worse) or recurse
without bound, each as long as a ticket's text may be. Used by tests/test_markdown_safety.py and
bench/markdown_cost.py.

Sources: the cases of issue #15 (``[`` floods, nested list markers), and the classes of worst case that
CommonMark implementations track in their own pathological tests (commonmark.js and cmark's
test/pathological_tests.py: nested brackets and emphasis, unclosed links, backtick runs, ``<`` floods,
deep blockquotes and lists, link reference floods, large tables), written here from their descriptions.
"""

from __future__ import annotations

TICKET_MAX = 20_000  # portal.domain.tickets.MAX_TEXT


def _fill(unit: str, size: int) -> str:
    """``unit`` repeated to about ``size`` characters."""
    return unit * max(1, size // len(unit))


def pathological_corpus(size: int = TICKET_MAX) -> dict[str, str]:
    """Name -> text of about (at most) ``size`` characters, for every pathological case."""
    lines = size // 12
    cases = {
        "open brackets": _fill("[", size),
        "image openers": _fill("![", size),
        "nested brackets and parentheses": _fill("[(", size),
        "balanced nested brackets": "[" * (size // 2) + "]" * (size // 2),
        "unclosed link destinations": _fill("[a](", size),
        "link closers": _fill("](", size),
        "nested links in images": _fill("[![", size),
        "ordered list markers": _fill("1. ", size),
        "bullet markers +": _fill("+ ", size),
        "bullet markers -": _fill("- ", size),
        "indented nested lists": "".join("  " * i + "- x\n" for i in range(int((size / 1.5) ** 0.5))),
        "deep blockquotes": _fill(">", size),
        "deep spaced blockquotes": _fill("> ", size),
        "blockquote and list nesting": _fill("> - ", size),
        "emphasis stars": _fill("*", size),
        "emphasis underscores": _fill("_", size),
        "alternating emphasis": _fill("*a", size),
        "alternating strong": _fill("**a", size),
        "mixed emphasis openers": _fill("*a **a _a __a ", size),
        "strong openers then a letter": "**" * (size // 2 - 1) + "a",
        "emphasis closers": _fill("a*", size),
        "strikethrough runs": _fill("~~a", size),
        "backticks": _fill("`", size),
        "backtick runs of growing length": "".join("`" * n + " a " for n in range(1, int((2 * size) ** 0.5) - 2)),
        "alternating backticks": _fill("`a``", size),
        "less-than signs": _fill("<", size),
        "unclosed tags": _fill("<a", size),
        "unclosed comments": _fill("<!--", size),
        "unclosed CDATA": _fill("<![CDATA[", size),
        "unclosed autolinks": _fill("<http://", size),
        "unclosed html blocks": _fill("<div>\n", size),
        "link reference flood": "".join(f"[r{i}]: /u{i}\n" for i in range(lines // 2))
        + " ".join(f"[r{i}]" for i in range(lines // 2)),
        "undefined references": _fill("[a][b]", size),
        "long table": "| a | b | c |\n|---|:-:|--:|\n" + _fill("| x | y | z |\n", size - 30),
        "wide table": "|" + "a|" * (size // 6) + "\n|" + "-|" * (size // 6) + "\n|" + "x|" * (size // 6) + "\n",
        "pipe flood": _fill("|", size),
        "heading markers": _fill("#", size),
        "setext underlines": _fill("a\n=\n", size),
        "entities": _fill("&amp;", size),
        "unfinished entities": _fill("&#", size),
        "backslashes": _fill("\\", size),
        "escaped brackets": _fill("\\[", size),
        "tabs then text": "\t" * (size - 1) + "x",
        "unclosed fences": _fill("```\n", size),
        "tilde fences": _fill("~~~", size),
        "footnote openers": _fill("[^", size),
        "one long word": "a" * size,
        "one long line of words": _fill("word ", size),
        "many short lines": _fill("a\n", size),
        "nul and control characters": _fill("\x00\x01\x1b[", size),
    }
    return {name: text[:size] for name, text in cases.items()}
