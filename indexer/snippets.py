"""The part of a matching section shown under a result's title."""

from __future__ import annotations

import re


def make_snippet(text: str, query: str, max_chars: int = 240) -> str:
    """The window of a chunk's text that shares most words with the query, cut at word boundaries."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    terms = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    sentences = re.split(r"(?<=[.!?])\s+", text)
    best, best_score = 0, -1
    for i, sentence in enumerate(sentences):
        score = len(terms & set(re.findall(r"\w+", sentence.lower())))
        if score > best_score:
            best, best_score = i, score
    snippet = ""
    for sentence in sentences[best:]:
        if len(snippet) + len(sentence) + 1 > max_chars:
            break
        snippet = f"{snippet} {sentence}".strip()
    if not snippet:
        cut = sentences[best][:max_chars].rsplit(" ", 1)[0]
        snippet = cut
    prefix = "… " if best > 0 else ""
    suffix = " …" if len(snippet) < len(" ".join(sentences[best:])) else ""
    return f"{prefix}{snippet}{suffix}"
