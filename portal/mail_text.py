"""Sanitised HTML (the Markdown of replies and solutions, as portal/domain/markdown_render.py renders it)
turned into readable plain text for the text part of an e-mail: a link reads "title (address)", list items
start with "- " or their number, code blocks keep their lines, and nothing of the markup is left."""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol", "hr"}


class _TextWriter(HTMLParser):
    """Collects the text of an HTML fragment with the line breaks its blocks imply."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, int]] = []  # (href, where its text starts in parts)
        self.lists: list[list] = []  # per open list: [ordered, next number]
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        """Open a block, a list item, a link or a line break."""
        attributes = dict(attrs)
        if tag in BLOCKS and not (tag in ("ul", "ol") and self.lists):  # a nested list needs no blank line
            self.parts.append("\n\n")
        if tag in ("ul", "ol"):
            self.lists.append([tag == "ol", 1])
        elif tag == "li":
            ordered, number = self.lists[-1] if self.lists else (False, 1)
            indent = "  " * max(len(self.lists) - 1, 0)
            self.parts.append(f"\n{indent}{number}. " if ordered else f"\n{indent}- ")
            if self.lists:
                self.lists[-1][1] += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "tr":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | " if self.parts and not self.parts[-1].endswith("\n") else "")
        elif tag == "pre":
            self.pre += 1
        elif tag == "a":
            self.links.append((attributes.get("href") or "", len(self.parts)))
        elif tag == "hr":
            self.parts.append("----")

    def handle_endtag(self, tag):
        """Close what was opened; a link gets its address after its text when the two differ."""
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.parts[start:]).strip()
            if href and href != text and not href.startswith("#"):
                self.parts.append(f" ({href.removeprefix('mailto:')})" if text else href)
        if tag in BLOCKS and not (tag in ("ul", "ol") and self.lists):
            self.parts.append("\n\n")

    def handle_data(self, data):
        """Text as it is inside code blocks, with its white space folded elsewhere (the line breaks between
        tags are not text)."""
        if not self.pre and not data.strip() and "\n" in data:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        """The collected text, at most one blank line in a row, no trailing spaces."""
        lines = [line.rstrip() for line in "".join(self.parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n ")


def html_as_text(html: str) -> str:
    """Readable plain text of a sanitised HTML fragment."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.text()
