"""What a file is, read from its content (never from its name), and the names it may be saved under.

Binary formats are recognised by their signatures with `filetype` (pure Python, reads the first 8 KB);
text, e-mails (.eml), SVG and HTML by looking at the text itself. Only the types in ``ALLOWED`` are
accepted; of them only PNG, JPEG, GIF and WebP images are ever shown inline (SVG can carry script, so it is
always a download), and HTML is refused outright.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import filetype

SNIFF_BYTES = 8192
MAX_NAME = 120


@dataclass(frozen=True)
class FileType:
    """An accepted kind of file: its media type, the extensions a file of it is saved with (the first one is
    added to a name that has none of them), and whether the browser may show it inline."""

    mime: str
    extensions: tuple[str, ...]
    inline: bool = False

    @property
    def is_image(self) -> bool:
        """Whether it is a picture (inline ones can be placed in an article's Markdown)."""
        return self.mime.startswith("image/")


ALLOWED: dict[str, FileType] = {t.mime: t for t in (
    FileType("image/png", ("png",), inline=True),
    FileType("image/jpeg", ("jpg", "jpeg"), inline=True),
    FileType("image/gif", ("gif",), inline=True),
    FileType("image/webp", ("webp",), inline=True),
    FileType("image/svg+xml", ("svg",)),
    FileType("application/pdf", ("pdf",)),
    FileType("text/plain", ("txt", "log", "csv", "md", "json", "xml", "ini", "conf", "cfg", "yaml", "yml")),
    FileType("message/rfc822", ("eml",)),
    FileType("application/zip", ("zip",)),
    FileType("application/rtf", ("rtf",)),
    FileType("application/msword", ("doc",)),
    FileType("application/vnd.ms-excel", ("xls",)),
    FileType("application/vnd.ms-powerpoint", ("ppt",)),
    FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)),
    FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",)),
    FileType("application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",)),
    FileType("application/vnd.oasis.opendocument.text", ("odt",)),
    FileType("application/vnd.oasis.opendocument.spreadsheet", ("ods",)),
    FileType("application/vnd.oasis.opendocument.presentation", ("odp",)),
)}
SAME_AS = {"image/apng": "image/png"}  # an animated PNG is a PNG to every browser

HTML_RE = re.compile(rb"<\s*(!doctype\s+html|html|head|body|script|iframe|frameset|object|embed|meta|base|form)"
                     rb"[\s>/]", re.IGNORECASE)
SVG_RE = re.compile(rb"<\s*svg[\s>/]", re.IGNORECASE)
HEADER_LINE_RE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,60}:[ \t]?[^\r\n]*$")
MAIL_HEADERS = (b"from", b"subject", b"date", b"message-id", b"received", b"mime-version", b"to")
CONTROL_BYTES = set(range(0, 9)) | {11, 14, 15} | set(range(16, 27)) | set(range(28, 32)) | {127}


def detect(data: bytes) -> str | None:
    """The media type of the content: a binary signature, else e-mail, SVG, HTML or plain text; None when
    it is none of those (unrecognised binary data)."""
    head = data[:SNIFF_BYTES]
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return SAME_AS.get(kind.mime, kind.mime)
    if not _is_text(data):
        return None
    if _is_mail(head):
        return "message/rfc822"
    if SVG_RE.search(head) and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "image/svg+xml"
    if HTML_RE.search(head):
        return "text/html"
    return "text/plain"


def _is_text(data: bytes) -> bool:
    """Text: no NUL, almost no control characters, and UTF-8 (else read as Latin-1, which any bytes are)."""
    if b"\x00" in data:
        return False
    sample = data[:SNIFF_BYTES * 8]
    controls = sum(1 for byte in sample if byte in CONTROL_BYTES)
    return controls <= len(sample) // 100


def _is_mail(head: bytes) -> bool:
    """An e-mail: it starts with header lines, among them From and another header every mail has."""
    names = set()
    for line in head.splitlines()[:60]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):  # a folded header goes on
            continue
        if not HEADER_LINE_RE.match(line):
            return False
        names.add(line.split(b":", 1)[0].lower())
    return b"from" in names and len(names & set(MAIL_HEADERS)) >= 2


def allowed_type(mime: str | None) -> FileType | None:
    """The accepted type for a detected media type, or None when Mesa does not accept it."""
    return ALLOWED.get(mime or "")


def safe_filename(name: str, file_type: FileType) -> str:
    """A name to show and to save the file under: no folders, no control or quoting characters, at most
    120 characters, and ending with an extension of its real type (``page.png`` that is text becomes
    ``page.png.txt``)."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>*?|:;')
    name = " ".join(name.split()).strip(" .") or "attachment"
    stem, dot, extension = name.rpartition(".")
    if not dot or extension.lower() not in file_type.extensions:
        stem, extension = name, file_type.extensions[0]
    return f"{stem[:MAX_NAME - len(extension) - 1].rstrip(' .') or 'attachment'}.{extension.lower()}"


def ascii_filename(name: str) -> str:
    """The name in plain ASCII letters, digits and ``._-`` (for the ``filename=`` of a download and URLs)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-.")
    return ascii_name or "attachment"
