"""Personal API tokens: created and revoked by their owner, stored as a SHA-256 hash, scoped read or write."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import N_, Invalid, NotFound
from .models import ApiToken, User, utcnow

SCOPES = ("read", "write")
TOKEN_PREFIX = "mesa_"
MAX_NAME = 80
MAX_TOKENS_PER_USER = 20
# The last-used time is written at most this often per token (not on every request).
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    """The stored form of a token: its SHA-256 in hex (the secret has 256 random bits, so no salt is needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, user: User, name: str, scope: str) -> tuple[ApiToken, str]:
    """A new token for ``user``: the row and the secret, which is never stored and cannot be shown again."""
    name = " ".join((name or "").split())
    if not name:
        raise Invalid(N_("The %(field)s is required."), field=N_("token name"))
    if len(name) > MAX_NAME:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("token name"),
                      max=MAX_NAME)
    if scope not in SCOPES:
        raise Invalid(N_("The access of a token is read or write."))
    if len(tokens_of(session, user)) >= MAX_TOKENS_PER_USER:
        raise Invalid(N_("You have %(max)d tokens already; revoke one first."), max=MAX_TOKENS_PER_USER)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, user_id=user.id, name=name, scope=scope, token_hash=hash_token(secret),
                     prefix=secret[:len(TOKEN_PREFIX) + 6], created_at=utcnow())
    session.add(token)
    session.flush()
    return token, secret


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """A user's tokens, newest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.id.desc())))


def revoke_token(session: Session, user: User, token_id) -> ApiToken:
    """Delete one of the user's own tokens (NotFound for anyone else's: they cannot probe ids)."""
    token = session.get(ApiToken, token_id) if isinstance(token_id, int) else None
    if token is None or token.user_id != user.id:
        raise NotFound(N_("There is no such token."))
    session.delete(token)
    session.flush()
    return token


def find_token(session: Session, secret: str, now: datetime | None = None) -> ApiToken | None:
    """The token with this secret whose owner is active, its last-used time brought up to date; else None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or not token.user.active:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        token.last_used_at = now
    return token
