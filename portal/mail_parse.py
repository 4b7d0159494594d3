"""Reads an incoming e-mail (raw bytes) into what Mesa needs: the sender, subject, thread ids, the text
(HTML turned into plain text, scripts and styles dropped), the attachments (names and bytes), and whether it
is an automatic message (an auto-reply, a bounce, a list) that must not be answered.

``parse`` never raises: whatever the bytes are, it returns a ParsedMail, with ``problem`` saying why the
message cannot become a ticket when it cannot.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from html.parser import HTMLParser

from .mail_threading import MESSAGE_ID_RE, message_ids

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
BOUNDARY_DEFECTS = {"StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect",
                    "MultipartInvariantViolationDefect", "CloseBoundaryNotFoundDefect"}
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply")


@dataclass(frozen=True)
class MailAttachment:
    """A file in an e-mail: its name (its media type when it has none) and its decoded bytes."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class ParsedMail:
    """What Mesa reads from one e-mail."""

    sender: str = ""  # the From address, lower case ("": none that is an address)
    sender_name: str = ""
    subject: str = ""
    message_id: str = ""
    thread_ids: list[str] = field(default_factory=list)  # In-Reply-To, then References
    text: str = ""
    attachments: list[MailAttachment] = field(default_factory=list)
    automatic: str = ""  # why it is an automatic message ("": written by a person)
    problem: str = ""  # why it cannot become a ticket ("": it can)
    lang: str = ""  # "es" or "en" from Content-Language ("": not said)
    urgent: bool = False  # marked high importance by the sender


def clean_text(value: str) -> str:
    """Text safe to store and show: undecodable bytes read as UTF-8 (else Latin-1), no control characters."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        data = value.encode("utf-8", "surrogateescape")
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = data.decode("latin-1")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates of any other kind
    return CONTROL_RE.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(value: str) -> str:
    """Whitespace (line breaks included) collapsed to single spaces."""
    return " ".join(value.split())


def decode_words(value: str) -> str:
    """A header's text with its RFC 2047 encoded words decoded; an unknown charset is read as UTF-8."""
    try:
        parts = decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as it came
        return value
    text = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        try:
            text.append(chunk.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            text.append(chunk.decode("utf-8", "replace"))
    return "".join(text)


def header(message: Message, name: str) -> str:
    """One header's value as clean text ("" when missing), read the lenient way."""
    try:
        value = message.get(name)
    except Exception:  # the email package fails on some malformed headers
        value = None
    if value is None:
        return ""
    return clean_text(decode_words(str(value)))


class _TextFromHtml(HTMLParser):
    """Collects the visible text of an HTML document: no script, style or head, a line break per block."""

    SKIPPED = {"script", "style", "head", "title", "template", "noscript"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
              "ul", "ol", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML body (scripts, styles and markup removed), paragraphs kept as lines."""
    parser = _TextFromHtml()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; anything left over is dropped with the markup
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def part_text(part: Message) -> str:
    """A text part's content in its declared charset; a wrong or unknown one is read as UTF-8, else Latin-1."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        payload = part.get_payload()
        return clean_text(payload) if isinstance(payload, str) else ""
    for charset in (part.get_content_charset() or "utf-8", "utf-8"):
        try:
            return clean_text(payload.decode(charset))
        except (LookupError, UnicodeDecodeError):
            continue
    return clean_text(payload.decode("latin-1"))


def _body_and_attachments(message: EmailMessage) -> tuple[str, list[MailAttachment]]:
    """The message's text (plain preferred, else HTML as text) and its attachments."""
    body = None
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except Exception:
        body = None
    text = ""
    if body is not None:
        text = part_text(body)
        if body.get_content_subtype() == "html":
            text = html_to_text(text)
    attachments = []
    for part in message.walk():
        if part is body or part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if filename or disposition == "attachment" or part.get_content_maintype() not in ("text", "message"):
            try:
                payload = part.get_payload(decode=True) or b""
            except Exception:  # a part the email package cannot decode is no file
                payload = b""
            attachments.append(MailAttachment(clean_text(decode_words(filename or "")) or part.get_content_type(),
                                              payload))
    return text.strip(), attachments


def automatic_reason(message: Message, sender: str, own_addresses: set[str]) -> str:
    """Why the message was sent by a machine and must not be answered ("": it was not)."""
    if sender and sender in own_addresses:
        return "sent from Mesa's own address"
    local = sender.partition("@")[0]
    if local in BOUNCE_SENDERS:
        return f"bounce (from {local})"
    if message.get_content_type() == "multipart/report":
        return "bounce (multipart/report)"
    if header(message, "Return-Path").strip() == "<>":
        return "bounce (empty Return-Path)"
    auto_submitted = header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted[:40]}"
    precedence = header(message, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in AUTO_HEADERS:
        if message.get(name) is not None:
            return f"{name} header"
    return ""


def _sender(message: Message) -> tuple[str, str]:
    """The From address (lower case, "" when it is no address) and display name."""
    raw = header(message, "From")
    try:
        addresses = getaddresses([raw])
    except Exception:
        addresses = []
    for name, address in addresses:
        address = address.strip().lower()
        if EMAIL_RE.match(address):
            return address[:254], one_line(name)[:120]
    return "", ""


def _language(message: Message) -> str:
    """es or en from Content-Language ("" otherwise)."""
    value = header(message, "Content-Language").strip().lower()[:2]
    return value if value in ("es", "en") else ""


def _urgent(message: Message) -> bool:
    """Whether the sender marked the message as important (Importance, X-Priority, Priority)."""
    return (header(message, "Importance").strip().lower() == "high"
            or header(message, "X-Priority").strip()[:1] in ("1", "2")
            or header(message, "Priority").strip().lower() == "urgent")


def parse(raw: bytes, own_addresses: set[str] = frozenset(), headers_only: bool = False) -> ParsedMail:
    """Everything Mesa reads from an e-mail; never raises (``problem`` says what is wrong).

    ``headers_only`` reads the headers and leaves the body (a message too big to be made into a ticket)."""
    parsed = ParsedMail()
    try:
        message = email.message_from_bytes(raw, policy=policy.default.clone(raise_on_defect=False),
                                           _class=EmailMessage) if not headers_only else \
            BytesHeaderParser(policy=policy.default).parsebytes(raw)
        parsed.sender, parsed.sender_name = _sender(message)
        parsed.subject = one_line(header(message, "Subject"))[:300]
        found = MESSAGE_ID_RE.findall(header(message, "Message-ID"))
        parsed.message_id = found[0] if found else ""
        parsed.thread_ids = message_ids(header(message, "In-Reply-To")) + message_ids(header(message, "References"))
        parsed.automatic = automatic_reason(message, parsed.sender, own_addresses)
        parsed.lang, parsed.urgent = _language(message), _urgent(message)
        if headers_only:
            return parsed
        defects = {type(defect).__name__ for part in message.walk() for defect in part.defects}
        if defects & BOUNDARY_DEFECTS:
            parsed.problem = f"broken MIME structure ({', '.join(sorted(defects & BOUNDARY_DEFECTS))})"
            return parsed
        parsed.text, parsed.attachments = _body_and_attachments(message)
    except Exception as exc:  # anything the email package cannot read: quarantined, never a crash
        parsed.problem = f"unreadable message ({type(exc).__name__}: {str(exc)[:120]})"
    return parsed
