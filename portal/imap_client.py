"""The help-desk mailbox over IMAP (imaplib): connect with TLS as configured, list the messages Mesa has not
processed yet, fetch one, and flag it as processed once its ticket is committed.

A processed message gets the keyword ``$MesaProcessed`` (and ``\\Seen``); messages without it are fetched.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from contextlib import contextmanager

PROCESSED = "$MesaProcessed"
IMAP_TIMEOUT = 30  # seconds for each step of the IMAP conversation
UIDVALIDITY_RE = re.compile(rb"UIDVALIDITY (\d+)")


class MailboxProblem(Exception):
    """The IMAP server could not be used (unreachable, refused the login, no such folder)."""


def mailbox_name(config, folder: str) -> str:
    """How a folder of the configured account is named in Mesa's records."""
    return f"{config['MESA_IMAP_USER']}@{config['MESA_IMAP_HOST']}:{config['MESA_IMAP_PORT']}/{folder}"[:200]


def folders(config) -> list[str]:
    """The folders to fetch (MESA_IMAP_FOLDERS, comma-separated)."""
    return [name.strip() for name in config["MESA_IMAP_FOLDERS"].split(",") if name.strip()]


def _connect(config) -> imaplib.IMAP4:
    """A logged-in IMAP connection, secured as MESA_IMAP_TLS says."""
    host, port, mode = config["MESA_IMAP_HOST"], config["MESA_IMAP_PORT"], config["MESA_IMAP_TLS"]
    context = ssl.create_default_context(cafile=config["MESA_IMAP_CA_FILE"] or None)
    if mode == "imaps":
        client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=IMAP_TIMEOUT)
    else:
        client = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT)
        if mode == "starttls":
            client.starttls(ssl_context=context)
    client.login(config["MESA_IMAP_USER"], config["MESA_IMAP_PASSWORD"])
    return client


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Mailbox:
    """One selected folder of the help-desk mailbox."""

    def __init__(self, client: imaplib.IMAP4, folder: str):
        self.client, self.folder = client, folder
        status, data = client.select(_quote(folder))
        if status != "OK":
            raise MailboxProblem(f"cannot open folder {folder!r}: {data!r}")
        response = client.untagged_responses.get("UIDVALIDITY") or []
        match = re.match(rb"(\d+)", response[-1]) if response else None
        if match is None:
            status, data = client.status(_quote(folder), "(UIDVALIDITY)")
            match = UIDVALIDITY_RE.search(data[0] or b"") if status == "OK" else None
        if match is None:
            raise MailboxProblem(f"the server gives no UIDVALIDITY for {folder!r}")
        self.uidvalidity = int(match.group(1))

    def pending_uids(self) -> list[int]:
        """UIDs of the messages not flagged as processed, oldest first."""
        status, data = self.client.uid("SEARCH", None, "UNKEYWORD", PROCESSED, "UNDELETED")
        if status != "OK":
            raise MailboxProblem(f"search failed in {self.folder!r}: {data!r}")
        return sorted(int(uid) for uid in (data[0] or b"").split())

    def fetch(self, uid: int) -> bytes | None:
        """The whole message (None when it is gone); fetching with BODY.PEEK leaves it unread."""
        return self._fetch_part(uid, "BODY.PEEK[]")

    def size(self, uid: int) -> int:
        """The message's size in bytes, as the server says (0 when it does not)."""
        status, data = self.client.uid("FETCH", str(uid), "(RFC822.SIZE)")
        match = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(item for item in data if isinstance(item, bytes))) \
            if status == "OK" else None
        return int(match.group(1)) if match else 0

    def fetch_header(self, uid: int) -> bytes | None:
        """Only the message's header (for a message too big to download)."""
        return self._fetch_part(uid, "BODY.PEEK[HEADER]")

    def _fetch_part(self, uid: int, part: str) -> bytes | None:
        """One FETCH item of a message (None when the message is gone)."""
        status, data = self.client.uid("FETCH", str(uid), f"({part})")
        if status != "OK":
            raise MailboxProblem(f"fetch of {uid} failed: {data!r}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None

    def mark_processed(self, uid: int) -> None:
        """Flag the message as processed (read, and Mesa's keyword)."""
        status, data = self.client.uid("STORE", str(uid), "+FLAGS", f"(\\Seen {PROCESSED})")
        if status != "OK":
            raise MailboxProblem(f"flagging {uid} failed: {data!r}")


@contextmanager
def open_mailbox(config, folder: str):
    """The folder, selected on a fresh logged-in connection that is closed afterwards; MailboxProblem when
    the server cannot be used."""
    try:
        client = _connect(config)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise MailboxProblem(f"{type(exc).__name__}: {exc}") from exc
    try:
        try:
            mailbox = Mailbox(client, folder)
        except imaplib.IMAP4.error as exc:
            raise MailboxProblem(f"{type(exc).__name__}: {exc}") from exc
        yield mailbox
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
