"""Accounts: create, authenticate (in the same time whether the account exists or not), verify, demo accounts."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import N_, Invalid
from .models import Role, User, utcnow

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
NO_PASSWORD = "!none"  # the password hash of an account created from an e-mail: no password opens it

DEMO_ACCOUNTS = (
    ("admin@mesa.example", "Ada Admin", Role.ADMIN),
    ("l1@mesa.example", "Luis Primero", Role.AGENT_L1),
    ("l2@mesa.example", "Lena Segunda", Role.AGENT_L2),
    ("customer@mesa.example", "Carmen Cliente", Role.CUSTOMER),
)


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively."""
    return (email or "").strip().lower()


def check_new_account(email: str, password: str) -> str:
    """The normalised address of a new account; Invalid if it is malformed or the password too short."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email):
        raise Invalid(N_("'%(email)s' is not an e-mail address."), email=email)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid(N_("The password must have at least %(min)d characters."), min=MIN_PASSWORD_LENGTH)
    return email


def check_allowed_domain(email: str, allowed_domains: str) -> None:
    """Invalid unless the address's domain is one of ``allowed_domains`` (comma-separated; empty: any)."""
    allowed = {d.strip().lower().lstrip("@") for d in (allowed_domains or "").split(",") if d.strip()}
    domain = normalise_email(email).rpartition("@")[2]
    if allowed and domain not in allowed:
        raise Invalid(N_("Accounts can only be created with an address at %(domains)s."),
                      domains=", ".join(sorted(allowed)))


def find_by_email(session: Session, email: str) -> User | None:
    """The account with this address (in any case), or None."""
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def parse_role(role: Role | str) -> Role:
    """The role a value names; Invalid (listing the roles) when it names none."""
    try:
        return Role(role)
    except ValueError:
        raise Invalid(N_("Unknown role '%(role)s'; choose one of %(roles)s."), role=role,
                      roles=", ".join(r.value for r in Role)) from None


def check_address_free(session: Session, email: str) -> None:
    """Invalid when an account has this address already (in any case)."""
    if find_by_email(session, email) is not None:
        raise Invalid(N_("An account for %(email)s exists already."), email=normalise_email(email))


def create_user(session: Session, email: str, name: str, password: str, role: Role | str,
                verified: bool = True) -> User:
    """A new account; Invalid if the e-mail is malformed or taken, the password too short or the role unknown.

    Accounts made by admins, commands and seeds are ``verified``; self-registration passes False and the
    address is verified by the link of an e-mail.
    """
    email = check_new_account(email, password)
    role = parse_role(role)
    check_address_free(session, email)
    user = User(email=email, name=(name or email.split("@")[0]).strip()[:120], role=role,
                email_verified_at=utcnow() if verified else None)
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


def find_or_create_customer(session: Session, email: str, name: str = "") -> User:
    """The account of this address, or a new customer account without a password (someone who wrote to the
    help desk by e-mail); Invalid when the address is malformed."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Invalid(N_("'%(email)s' is not an e-mail address."), email=email)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=(name or email.split("@")[0]).strip()[:120], role=Role.CUSTOMER,
                    password_hash=NO_PASSWORD)
        session.add(user)
        session.flush()
    return user
def register_customer(session: Session, email: str, name: str, password: str) -> tuple[User, bool]:
    """Self-registration: a new unverified customer (True), or the account that has the address already
    (False). The password is hashed either way, so both answers take the same time and the caller can
    answer both alike without telling which addresses have accounts."""
    email = check_new_account(email, password)
    existing = find_by_email(session, email)
    if existing is not None:
        generate_password_hash(password)  # the same work as a new account, result unused
        return existing, False
    return create_user(session, email, name, password, Role.CUSTOMER, verified=False), True


def mark_verified(user: User, now: datetime | None = None) -> bool:
    """Record that the person reads the account's address; False if it was verified already."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = now or utcnow()
    return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of a random password made like real ones (the same method and cost), computed once."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None.

    The password is checked against a hash whether or not the account exists (a dummy hash for unknown
    addresses), so the answer takes as long for an unknown address as for a wrong password: the time of a
    failed sign-in does not tell which addresses have accounts.
    """
    user = find_by_email(session, email)
    known = user is not None and user.has_password  # a customer created from an e-mail has none yet
    matches = check_password_hash(user.password_hash if known else _dummy_hash(), password or "")
    if not known or not user.active or not matches:
        return None
    return user


def create_demo_accounts(session: Session) -> list[tuple[User, str]]:
    """Create the demo accounts that do not exist yet; returns them with their new random passwords."""
    created = []
    for email, name, role in DEMO_ACCOUNTS:
        if session.scalar(select(User).where(User.email == email)) is not None:
            continue
        password = secrets.token_urlsafe(12)
        created.append((create_user(session, email, name, password, role), password))
    return created
