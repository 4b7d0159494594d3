"""One way to write an e-mail to a person: its content as a few blocks (paragraphs, a Markdown text, links,
offered articles, rating links), rendered once as plain text and once as sanitised HTML by the two layouts
portal/templates/mail/message.txt and message.html. Each kind of mail says what it contains once; the two
parts cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import render_template
from markupsafe import Markup, escape

from .domain.markdown_render import render_markdown
from .mail_links import portal_url
from .mail_text import html_as_text

LOCAL_LINK = re.compile(r'(\s(?:href|src)=")/(?!/)')
WEB_ADDRESS = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)]")


@dataclass(frozen=True)
class Paragraph:
    """Plain text (its line breaks kept)."""

    text: str
    kind: str = "paragraph"


@dataclass(frozen=True)
class LinkedText:
    """Plain text whose web addresses become links in the HTML part (its line breaks kept)."""

    text: str
    kind: str = "linked"


@dataclass(frozen=True)
class MarkdownText:
    """A Markdown text of the ticket (an agent's reply, a solution), quoted in the mail."""

    text: str
    kind: str = "markdown"


@dataclass(frozen=True)
class Link:
    """One address with what it leads to."""

    label: str
    url: str
    kind: str = "link"


@dataclass(frozen=True)
class OfferedArticle:
    """An article that may answer the ticket, and its "This solved my problem" link."""

    title: str
    url: str
    solved_url: str


@dataclass(frozen=True)
class Articles:
    """The articles an acknowledgement offers, each with its one-click link labelled ``solved_label``."""

    intro: str
    items: tuple[OfferedArticle, ...]
    solved_label: str
    kind: str = "articles"


@dataclass(frozen=True)
class Choices:
    """A question answered by one of several links (the satisfaction rating)."""

    intro: str
    links: tuple[Link, ...]
    kind: str = "choices"


@dataclass
class Mail:
    """What a mail says: its subject, greeting and blocks, in the language they were written in."""

    subject: str
    greeting: str
    blocks: list = field(default_factory=list)


def absolute_links(html: str) -> str:
    """Links and images of the portal's own pages made absolute: a mail is read outside the portal."""
    return LOCAL_LINK.sub(lambda match: f'{match.group(1)}{portal_url("/")}', html)


def markdown_html(text: str) -> Markup:
    """A Markdown text as sanitised HTML for the HTML part."""
    return Markup(absolute_links(render_markdown(text)))


def markdown_plain(text: str) -> str:
    """A Markdown text as readable plain text for the text part ("title (address)" for a link)."""
    return html_as_text(absolute_links(render_markdown(text)))


def linked_html(text: str) -> Markup:
    """Plain text escaped, its line breaks as <br> and its web addresses as links."""
    parts, last = [], 0
    for match in WEB_ADDRESS.finditer(text):
        parts.append(escape(text[last:match.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(match.group(0)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("".join(parts)).replace("\n", Markup("<br>\n"))


def text_mail_html(subject: str, body: str, lang: str) -> str:
    """The HTML part of a mail written as plain text (account and agent mails): its paragraphs, with links,
    in the same layout as every other mail."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    return render_template("mail/message.html", mail=Mail(subject, "", [LinkedText(p) for p in paragraphs]),
                           markdown_html=markdown_html, linked_html=linked_html, mail_lang=lang)


def render(mail: Mail, lang: str) -> tuple[str, str]:
    """The plain-text and HTML parts of the mail, written in ``lang``."""
    text = render_template("mail/message.txt", mail=mail, markdown_plain=markdown_plain)
    html = render_template("mail/message.html", mail=mail, markdown_html=markdown_html, linked_html=linked_html,
                           mail_lang=lang)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", html
