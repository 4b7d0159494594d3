"""Where attachments' bytes live: one small interface, three stores.

- ``DatabaseStore`` (the default): a row of ``attachment_blobs`` written in the same transaction as the
  attachment, so every host that shares the database has the file and a backup holds it.
- ``DirectoryStore``: a file named by the content's SHA-256 under a directory outside the web root (written
  to a temporary name and renamed into place; the same content is stored once). Every host must see the
  same directory (a shared mount), and it is backed up apart from the database.
- ``ObjectStore`` (``s3``): an object named ``<prefix><sha256>`` in a bucket of S3 or any S3-compatible
  server (MinIO, Ceph...), through boto3, imported only when the store is first used (the same content is
  stored once). Every host reaches the same bucket; it is backed up apart from the database.

Each attachment records the store that holds it, so changing MESA_ATTACHMENT_STORE later keeps the files
stored before readable.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from .errors import N_, DomainError
from .models import Attachment, AttachmentBlob

log = logging.getLogger(__name__)

STORE_NAMES = ("database", "directory", "s3")
MISSING_OBJECT_CODES = {"404", "NoSuchKey", "NotFound"}  # what S3 answers for a key that is not there


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


class StoreUnavailable(DomainError):
    """The store that holds a file cannot be reached now (the object store is down, the directory unreadable)."""

    status = 503


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable(N_("The file store cannot be reached right now; nothing was changed. Try again in a "
                               "moment."))


class ObjectStore:
    """Bytes in an S3-compatible bucket, under ``<prefix><sha256>``. Credentials come from boto3's usual chain
    (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role), never from Mesa's settings."""

    name = "s3"

    def __init__(self, bucket: str, prefix: str = "mesa/attachments/", endpoint_url: str = "", region: str = ""):
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = None
        self._client_lock = threading.Lock()

    def key_of(self, sha256: str) -> str:
        """The object's key for the content with this digest."""
        return self.prefix + sha256

    @property
    def client(self):
        """The boto3 S3 client, made on first use (boto3 is imported then, not when Mesa starts)."""
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # Checksums only where S3 requires them: several S3-compatible servers refuse the others.
                # A store that is down answers within seconds (a page waits for it), not after boto3's minute.
                config = Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required", connect_timeout=5, read_timeout=30,
                                retries={"max_attempts": 2, "mode": "standard"})
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.endpoint_url or None, region_name=self.region or None, config=config)
            return self._client

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None:
        """Upload the object unless the same content is already there. A transaction rolled back afterwards
        leaves the object unused, which is harmless."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_of(attachment.sha256)
        if self._exists(key):
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream")
        except (BotoCoreError, ClientError):
            log.exception("could not store attachment %s in bucket %s", attachment.id, self.bucket)
            raise _unavailable() from None

    def get(self, session: Session, attachment: Attachment) -> bytes | None:
        """The object's bytes (None when it is missing)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key_of(attachment.sha256))
            body = answer["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_OBJECT_CODES:
                return None
            log.exception("could not read attachment %s from bucket %s", attachment.id, self.bucket)
            raise _unavailable() from None
        except BotoCoreError:
            log.exception("could not read attachment %s from bucket %s", attachment.id, self.bucket)
            raise _unavailable() from None

    def _exists(self, key: str) -> bool:
        """Whether the bucket already has an object under ``key``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_OBJECT_CODES:
                return False
            log.exception("could not reach bucket %s", self.bucket)
            raise _unavailable() from None
        except BotoCoreError:
            log.exception("could not reach bucket %s", self.bucket)
            raise _unavailable() from None
        return True


def stores_for(directory: Path, object_store: ObjectStore | None = None) -> dict[str, AttachmentStore]:
    """Every store by name, the directory store rooted at ``directory``; ``s3`` when a bucket is set."""
    stores: dict[str, AttachmentStore] = {"database": DatabaseStore(), "directory": DirectoryStore(directory)}
    if object_store is not None:
        stores["s3"] = object_store
    return stores
