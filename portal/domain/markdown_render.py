"""Markdown written by people (articles, tickets, replies, notes, previews) as safe HTML, in bounded time.

CommonMark through markdown-it-py, whose parser is linear in the text (bench/markdown_cost.py measures it
against Python-Markdown, which is quadratic on runs of ``[`` and recursed to death on nested list markers),
with tables and strikethrough. Raw HTML in the text is shown as text, never as markup. On top:

- a CPU budget per text (``budget_seconds``): a text that would cost more is shown as plain text;
- a nesting budget (``MAX_NESTING``): text nested deeper than that is shown as plain text, never cut off;
- any error while rendering shows the text as plain text, so stored text can never break a page;
- nh3 (ammonia) sanitises the result: no scripts or event handlers, no ``class`` except a code block's
  language (``language-python``), images only from Mesa itself (others become links);
- a bounded in-process cache, so the views of one ticket or article do not render its text again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from functools import cache
from urllib.parse import urlsplit

import nh3
from markupsafe import escape

log = logging.getLogger(__name__)

MAX_NESTING = 20  # block and inline levels (a list item is two); deeper text is shown as plain text
BUDGET_BASE_SECONDS = 0.02  # CPU time any text may take to render...
BUDGET_SECONDS_PER_CHAR = 3e-6  # ...plus this per character (prose and pasted logs cost about 0.35 µs one)
BUDGET_CHECK_EVERY = 256  # parser steps between two looks at the clock
CACHE_MAX_CHARS = 16_000_000  # text and HTML kept in the cache, in characters, per process

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"}}
ALIGN_VALUES = {"th": {"align": {"left", "center", "right"}}, "td": {"align": {"left", "center", "right"}}}
LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
TABLE_ALIGN = re.compile(r"text-align:(left|center|right)")


class RenderBudgetExceeded(Exception):
    """The text costs more to render than its budget."""


def render_markdown(text: str | None, breaks: bool = False) -> str:
    """The text's Markdown as sanitised HTML; plain text (escaped) when it is too costly, too deep or
    cannot be rendered. Never raises. ``breaks``: a single line break is kept as a line break (messages
    people type: ticket descriptions, replies, notes, solutions), not joined into the paragraph as
    CommonMark does (articles)."""
    text = text or ""
    html = _CACHE.get(text, breaks)
    if html is None:
        html, _outcome = render_with_outcome(text, breaks)
        _CACHE.put(text, html, breaks)
    return html


def render_message(text: str | None) -> str:
    """A message someone typed (ticket description, reply, note, solution) as sanitised HTML: Markdown,
    with its single line breaks kept."""
    return render_markdown(text, breaks=True)


def budget_seconds(text: str) -> float:
    """The CPU time the text may take to render before it is shown as plain text instead."""
    return BUDGET_BASE_SECONDS + BUDGET_SECONDS_PER_CHAR * len(text)


def plain_text_html(text: str) -> str:
    """The text escaped, as paragraphs (blank lines) with line breaks: readable, never markup."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "".join(f"<p>{'<br>'.join(str(escape(line)) for line in p.strip().split(chr(10)))}</p>\n"
                   for p in paragraphs)


def is_local_url(url: str) -> bool:
    """Whether a URL points into Mesa itself: a path on this site, no scheme, no host (``//host`` and
    backslashes, which browsers read as slashes, are foreign)."""
    if not url or "\\" in url or "%5c" in url.lower() or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return False
    if url.startswith("//"):
        return False
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def sanitise(html: str) -> str:
    """HTML reduced to the allowed tags and attributes (see the module's docstring)."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, tag_attribute_values=ALIGN_VALUES,
                     attribute_filter=_filter_attribute, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Code keeps only its language classes; an image keeps its source only when it is Mesa's own."""
    if attribute == "class":
        if tag != "code":
            return None
        kept = [name for name in value.split() if LANGUAGE_CLASS.fullmatch(name)]
        return " ".join(kept) or None
    if tag == "img" and attribute == "src":
        return value if is_local_url(value) else None
    return value


def render_with_outcome(text: str, breaks: bool = False) -> tuple[str, str]:
    """(sanitised HTML, outcome), uncached. The outcome says how the text is shown: "markdown", or as plain
    text because it was "over budget", "too deep" or met an "error" of the parser."""
    try:
        html = _render(text, breaks)
        if html is None:
            outcome = "too deep"
            html = plain_text_html(text)
        else:
            outcome = "markdown"
    except RenderBudgetExceeded:
        log.warning("markdown over its budget (%d characters): shown as plain text", len(text))
        outcome, html = "over budget", plain_text_html(text)
    except Exception:  # any parser bug on odd input: the page still shows the text
        log.exception("markdown could not be rendered (%d characters): shown as plain text", len(text))
        outcome, html = "error", plain_text_html(text)
    return sanitise(html), outcome


def _render(text: str, breaks: bool = False) -> str | None:
    """markdown-it's HTML for the text within its CPU budget (RenderBudgetExceeded otherwise); None when the
    text nests deeper than MAX_NESTING (markdown-it would drop what lies deeper)."""
    parser = _parser(breaks)
    env = {"mesa_budget": _Budget(time.thread_time() + budget_seconds(text))}
    tokens = parser.parse(text, env)
    if any(token.level >= MAX_NESTING - 1 for token in tokens):
        return None
    _adjust(tokens)
    return parser.renderer.render(tokens, parser.options, env)


class _Budget:
    """The CPU deadline of one render, looked at every ``BUDGET_CHECK_EVERY`` parser steps."""

    __slots__ = ("deadline", "steps")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.steps = 0

    def spend(self) -> None:
        """Count a step; raise RenderBudgetExceeded once the deadline has passed."""
        self.steps += 1
        if self.steps % BUDGET_CHECK_EVERY == 0 and time.thread_time() > self.deadline:
            raise RenderBudgetExceeded


def _inline_budget(state, silent: bool) -> bool:
    """First inline rule: spends a step of the budget, never matches."""
    state.env["mesa_budget"].spend()
    return False


def _block_budget(state, start_line: int, end_line: int, silent: bool) -> bool:
    """First block rule: spends a step of the budget, never matches."""
    state.env["mesa_budget"].spend()
    return False


@cache
def _parser(breaks: bool = False):
    """The CommonMark parser: no raw HTML, tables, strikethrough, the nesting limit, the budget; with
    ``breaks``, single line breaks become ``<br>``."""
    from markdown_it import MarkdownIt  # imported on first use: nothing heavy at import time

    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING, "xhtmlOut": False,
                                       "breaks": breaks})
    parser.enable(["table", "strikethrough"])
    parser.inline.ruler.before("text", "mesa_budget", _inline_budget)
    parser.block.ruler.before("table", "mesa_budget", _block_budget)
    return parser


def _adjust(tokens) -> None:
    """Table alignment as ``align`` (no inline styles); foreign images as links to them."""
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            match = TABLE_ALIGN.fullmatch(str(token.attrGet("style") or ""))
            token.attrs.pop("style", None)
            if match:
                token.attrSet("align", match.group(1))
        if token.children:
            token.children = _images_as_links(token.children)


def _images_as_links(children: list) -> list:
    """Inline tokens with every image whose source is not Mesa's own replaced by a link to it (its alt text,
    else its address, as the link's text): the reader's browser fetches nothing foreign by itself."""
    from markdown_it.token import Token

    adjusted = []
    for token in children:
        source = str(token.attrGet("src") or "") if token.type == "image" else ""
        if token.type != "image" or is_local_url(source):
            adjusted.append(token)
            continue
        link = Token("link_open", "a", 1, attrs={"href": source})
        adjusted.append(link)
        adjusted.extend(token.children or [Token("text", "", 0, content=source)])
        adjusted.append(Token("link_close", "a", -1))
    return adjusted


class _RenderCache:
    """Rendered HTML by (text, breaks), least recently used first out, at most ``CACHE_MAX_CHARS`` in all."""

    def __init__(self, max_chars: int):
        self._entries: OrderedDict[tuple[str, bool], str] = OrderedDict()
        self._chars = 0
        self._max_chars = max_chars
        self._lock = threading.Lock()

    def get(self, text: str, breaks: bool = False) -> str | None:
        """The HTML rendered for this text (with or without kept line breaks), if kept."""
        key = (text, breaks)
        with self._lock:
            html = self._entries.get(key)
            if html is not None:
                self._entries.move_to_end(key)
            return html

    def put(self, text: str, html: str, breaks: bool = False) -> None:
        """Keep the HTML of a text, dropping the least recently used to stay within the size."""
        size = len(text) + len(html)
        if size > self._max_chars:
            return
        key = (text, breaks)
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = html
            self._chars += size
            while self._chars > self._max_chars:
                (old_text, _breaks), old_html = self._entries.popitem(last=False)
                self._chars -= len(old_text) + len(old_html)

    def clear(self) -> None:
        """Forget everything (tests that measure rendering)."""
        with self._lock:
            self._entries.clear()
            self._chars = 0


_CACHE = _RenderCache(CACHE_MAX_CHARS)
