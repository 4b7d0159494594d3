"""Attachments: files on a ticket's messages (the form that opened it, replies, internal notes, e-mails) and
images in articles. Checked before anything is saved (count, size, type read from the content), stored
through one store (portal/domain/attachment_store.py), and readable only by those who may see what they
belong to:

- a ticket's file: whoever may see the ticket (``tickets.can_view``); a file of an internal note, agents only;
- an article's image: whoever may read the article (published public ones: everyone; drafts and internal
  ones: agents, who edit them);
- an image an editor uploaded that no saved article uses yet: agents.

These functions never commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import articles as article_rules
from . import tickets as ticket_rules
from .attachment_store import AttachmentStore
from .errors import N_, Invalid, NotFound
from .file_types import FileType, allowed_type, ascii_filename, detect, safe_filename
from .models import Article, Attachment, Ticket, TicketEvent, User, utcnow

REFERENCE_RE = re.compile(r"/attachments/(\d{1,9})(?:/[A-Za-z0-9._-]*)?")
ACCEPTED_KINDS = N_("images (PNG, JPEG, GIF, WebP, SVG), PDF, text, e-mails (.eml), zip and office documents")


@dataclass(frozen=True)
class AttachmentSettings:
    """The limits (MESA_ATTACHMENT_MAX_BYTES, MESA_ATTACHMENT_MAX_FILES) and the stores, new files going
    to ``write_to`` (MESA_ATTACHMENT_STORE)."""

    max_bytes: int
    max_files: int
    stores: dict[str, AttachmentStore] = field(default_factory=dict)
    write_to: str = "database"

    @property
    def store(self) -> AttachmentStore:
        """Where new files are stored."""
        return self.stores[self.write_to]

    @property
    def request_limit(self) -> int:
        """The largest request that may carry a message's files: all of them at the largest size, plus 2 MB
        for the text and the form's own bytes."""
        return self.max_files * self.max_bytes + 2 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file as it came (a form's file field, a mail's part): the name it was given and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks: a safe name ending in its real type's extension, and that type."""

    name: str
    data: bytes
    file_type: FileType


def human_size(size: int) -> str:
    """A size for people: 820 B, 45.2 KB, 12.5 MB."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} KB"
    return f"{size / 1_000_000:.1f} MB"


def check_file(upload: Upload, settings: AttachmentSettings) -> CheckedFile:
    """The file if Mesa takes it: not empty, not over the size limit, of an accepted type found from its
    content. Invalid naming the file and the rule otherwise."""
    name = upload.name or "?"
    if not upload.data:
        raise Invalid(N_("“%(name)s” is empty."), name=name)
    if len(upload.data) > settings.max_bytes:
        raise Invalid(N_("“%(name)s” is too large (%(size)s): each file may be at most %(max)s."), name=name,
                      size=human_size(len(upload.data)), max=human_size(settings.max_bytes))
    detected = detect(upload.data)
    file_type = allowed_type(detected)
    if file_type is None:
        raise Invalid(N_("“%(name)s” is not a kind of file Mesa accepts (its content is %(kind)s). "
                         "Accepted: %(accepted)s."), name=name,
                      kind=detected or N_("not recognised"), accepted=ACCEPTED_KINDS)
    return CheckedFile(safe_filename(upload.name, file_type), upload.data, file_type)


def check_uploads(uploads: list[Upload], settings: AttachmentSettings) -> list[CheckedFile]:
    """Every file of one message checked (the count first); Invalid with the first problem found."""
    if len(uploads) > settings.max_files:
        raise Invalid(N_("Too many files: at most %(max)d per message (there were %(count)d)."),
                      max=settings.max_files, count=len(uploads))
    return [check_file(upload, settings) for upload in uploads]


def screen(uploads: list[Upload], settings: AttachmentSettings) -> tuple[list[CheckedFile], list[str]]:
    """For mail, which must become a ticket anyway: the files that pass, and one line per file that does
    not (in English, for the ticket's text: the file stays in the original e-mail)."""
    accepted, refused = [], []
    for upload in uploads:
        if len(accepted) >= settings.max_files:
            refused.append(f"{upload.name} (more than {settings.max_files} files)")
            continue
        try:
            accepted.append(check_file(upload, settings))
        except Invalid as exc:
            refused.append(exc.template % exc.params)
    return accepted, refused


def save(session: Session, settings: AttachmentSettings, checked: CheckedFile, uploader: User | None,
         ticket: Ticket | None = None, event: TicketEvent | None = None,
         article: Article | None = None) -> Attachment:
    """Record a checked file and store its bytes, belonging to a ticket's event or to an article (or, for
    an editor's upload not yet in a saved article, to nothing)."""
    attachment = Attachment(ticket=ticket, event=event, article=article, filename=checked.name,
                            content_type=checked.file_type.mime, size=len(checked.data),
                            sha256=hashlib.sha256(checked.data).hexdigest(), storage=settings.write_to,
                            uploaded_by_id=uploader.id if uploader is not None else None, created_at=utcnow())
    session.add(attachment)
    session.flush()
    settings.store.put(session, attachment, checked.data)
    return attachment


def attach_to_event(session: Session, settings: AttachmentSettings, ticket: Ticket, event: TicketEvent,
                    uploader: User | None, files: list[CheckedFile]) -> list[Attachment]:
    """The files of one message (the opening description, a reply, a note), on its ticket event."""
    return [save(session, settings, checked, uploader, ticket=ticket, event=event) for checked in files]


# ----- reading ------------------------------------------------------------------------------------------


def can_view(user: User | None, attachment: Attachment) -> bool:
    """Whether the user may open the file (see the module's docstring)."""
    if attachment.ticket_id is not None:
        if not ticket_rules.can_view(user, attachment.ticket):
            return False
        event = attachment.event
        return event is None or event.public or user.is_agent
    if attachment.article_id is not None:
        return article_rules.can_read(attachment.article, user)
    return user is not None and user.is_agent


def get_viewable(session: Session, attachment_id: int, user: User | None) -> Attachment:
    """The attachment if the user may open it; NotFound otherwise (not even whether it exists)."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not can_view(user, attachment):
        raise NotFound(N_("There is no such file."))
    return attachment


def read_bytes(session: Session, settings: AttachmentSettings, attachment: Attachment) -> bytes | None:
    """The file's bytes from the store that holds it (None when that store lost them)."""
    store = settings.stores.get(attachment.storage)
    return store.get(session, attachment) if store is not None else None


def of_ticket(session: Session, ticket: Ticket, user: User) -> dict[int | None, list[Attachment]]:
    """The ticket's files the user may open, by the event they came with (no bytes are loaded)."""
    grouped: dict[int | None, list[Attachment]] = {}
    for attachment in session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)
                                      .order_by(Attachment.id)):
        if can_view(user, attachment):
            grouped.setdefault(attachment.event_id, []).append(attachment)
    return grouped


def path_of(attachment: Attachment) -> str:
    """The file's address on the site (the route in portal/views/attachments.py), as Markdown uses it."""
    return f"/attachments/{attachment.id}/{ascii_filename(attachment.filename)}"


def markdown_of(attachment: Attachment) -> str:
    """The Markdown that shows an image (or links another file)."""
    label = attachment.filename.replace("[", "").replace("]", "")
    return f"{'!' if allowed_type(attachment.content_type).is_image else ''}[{label}]({path_of(attachment)})"


# ----- images in articles -------------------------------------------------------------------------------


def claim_images(session: Session, settings: AttachmentSettings, article: Article, actor: User, body: str) -> str:
    """Make the images an article's text places its own, so that they are readable wherever the article is:
    an editor's upload no article owns yet is linked to it; an image of a ticket (a promoted solution) or of
    another article, which the actor may see, is copied to it and the text pointed at the copy. Returns the
    text (changed only where it points at a copy)."""
    copies: dict[int, str] = {}

    def own(match: re.Match) -> str:
        attachment = session.get(Attachment, int(match.group(1)))
        if attachment is None or not attachment.content_type.startswith("image/") \
                or attachment.article_id == article.id or not can_view(actor, attachment):
            return match.group(0)
        if attachment.ticket_id is None and attachment.article_id is None:
            attachment.article = article
            return match.group(0)
        if attachment.id not in copies:
            data = read_bytes(session, settings, attachment)
            if data is None:
                return match.group(0)
            copy = save(session, settings, CheckedFile(attachment.filename, data, allowed_type(
                attachment.content_type)), actor, article=article)
            copies[attachment.id] = path_of(copy)
        return copies[attachment.id]

    return REFERENCE_RE.sub(own, body)


def images_of(session: Session, article: Article) -> list[Attachment]:
    """The images an article owns."""
    return list(session.scalars(select(Attachment).where(Attachment.article_id == article.id)
                                .order_by(Attachment.id)))
