"""Accounts: create, authenticate, demo accounts."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import N_, Invalid
from .models import Role, User

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


def create_user(session: Session, email: str, name: str, password: str, role: Role | str) -> User:
    """A new account; Invalid if the e-mail is malformed or taken, the password too short or the role unknown."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email):
        raise Invalid(N_("'%(email)s' is not an e-mail address."), email=email)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid(N_("The password must have at least %(min)d characters."), min=MIN_PASSWORD_LENGTH)
    try:
        role = Role(role)
    except ValueError:
        raise Invalid(N_("Unknown role '%(role)s'; choose one of %(roles)s."), role=role,
                      roles=", ".join(r.value for r in Role)) from None
    if session.scalar(select(User).where(User.email == email)) is not None:
        raise Invalid(N_("An account for %(email)s exists already."), email=email)
    user = User(email=email, name=(name or email.split("@")[0]).strip()[:120], role=role)
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


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.active or not user.check_password(password or ""):
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
