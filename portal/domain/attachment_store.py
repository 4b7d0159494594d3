"""Where attachments' bytes live: one small interface, two stores.

- ``DatabaseStore`` (the default): a row of ``attachment_blobs`` written in the same transaction as the
  attachment, so every host that shares the database has the file and a backup holds it.
- ``DirectoryStore``: a file named by the content's SHA-256 under a directory outside the web root (written
  to a temporary name and renamed into place; the same content is stored once). Every host must see the
  same directory (a shared mount), and it is backed up apart from the database.

Each attachment records the store that holds it, so changing MESA_ATTACHMENT_STORE later keeps the files
stored before readable. (An object store, S3 and the like, is not implemented.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from .models import Attachment, AttachmentBlob

STORE_NAMES = ("database", "directory")


class AttachmentStore(Protocol):
    """Keeps and returns the bytes of attachments."""

    name: str

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None:
        """Keep the bytes of a new attachment (flushed, so it has an id)."""

    def get(self, session: Session, attachment: Attachment) -> bytes | None:
        """The bytes of an attachment, or None when the store lost them."""


class DatabaseStore:
    """Bytes in ``attachment_blobs``, inside the caller's transaction."""

    name = "database"

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None:
        """A blob row for the attachment."""
        session.add(AttachmentBlob(attachment_id=attachment.id, data=data))

    def get(self, session: Session, attachment: Attachment) -> bytes | None:
        """The blob row's bytes."""
        blob = session.get(AttachmentBlob, attachment.id)
        return blob.data if blob is not None else None


class DirectoryStore:
    """Bytes in ``<root>/<first two hex digits>/<sha256>``."""

    name = "directory"

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_of(self, sha256: str) -> Path:
        """Where the content with this digest is kept."""
        return self.root / sha256[:2] / sha256

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None:
        """Write the file once (a crash leaves at most a temporary file, never half a file under its name).
        A transaction rolled back afterwards leaves the file unused, which is harmless."""
        path = self.path_of(attachment.sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, session: Session, attachment: Attachment) -> bytes | None:
        """The file's bytes (None when it is missing)."""
        try:
            return self.path_of(attachment.sha256).read_bytes()
        except FileNotFoundError:
            return None


def stores_for(directory: Path) -> dict[str, AttachmentStore]:
    """Every store by name, the directory store rooted at ``directory``."""
    return {"database": DatabaseStore(), "directory": DirectoryStore(directory)}
