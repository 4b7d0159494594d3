"""Message-IDs of the e-mails Mesa sends, so that a reply by mail finds its ticket: each e-mail gets its own
Message-ID (recorded in the outbox) and names the ticket's thread in In-Reply-To and References."""

from __future__ import annotations

import re
import secrets
from email.utils import parseaddr

THREAD_RE = re.compile(r"<mesa\.ticket\.(\d{1,9})@[^>\s]+>", re.IGNORECASE)
MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,240}>")


def mail_domain(mail_from: str) -> str:
    """The domain of Mesa's sender address (``localhost`` when it has none)."""
    address = parseaddr(mail_from or "")[1]
    return address.rpartition("@")[2].strip().lower() or "localhost"


def new_message_id(ticket_id: int | None, mail_from: str) -> str:
    """A fresh, unique Message-ID for one outgoing e-mail about a ticket."""
    return f"<mesa.{ticket_id or 0}.{secrets.token_hex(8)}@{mail_domain(mail_from)}>"


def thread_id(ticket_id: int, mail_from: str) -> str:
    """The id every e-mail about one ticket refers to (In-Reply-To, References)."""
    return f"<mesa.ticket.{ticket_id}@{mail_domain(mail_from)}>"


def message_ids(header_value: str) -> list[str]:
    """The Message-IDs named in an In-Reply-To or References header, in order."""
    return MESSAGE_ID_RE.findall(header_value or "")


def ticket_in_thread(ids: list[str]) -> int | None:
    """The ticket whose thread id is among ``ids`` (the newest mention wins), or None."""
    for value in reversed(ids):
        match = THREAD_RE.fullmatch(value)
        if match:
            return int(match.group(1))
    return None
