"""E-mail verification: signed, expiring links, and the account e-mails written to the outbox.

A link carries the account's id and address signed with the secret key (itsdangerous, which Flask uses for
its sessions) and a timestamp: it cannot be forged, it expires after MESA_VERIFY_LINK_HOURS, and it stops
working if the account's address changes. The mails are delivered by the background sender like every other.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import get_locale, force_locale, gettext as _
from sqlalchemy.orm import Session

from . import signed_links
from .domain.errors import N_, Invalid
from .domain.models import OutboxMessage, User
from .text_mail import queue_text_mail

SALT = "mesa-verify-email"


def make_token(user: User) -> str:
    """A verification token for the account's current address."""
    return signed_links.make_token(SALT, {"user": user.id, "email": user.email})


def read_token(session: Session, token: str) -> User:
    """The account a valid, unexpired token was made for; Invalid with a clear message otherwise."""
    data = signed_links.read_token(
        SALT, token, current_app.config["MESA_VERIFY_LINK_HOURS"] * 3600,
        expired=Invalid(N_("This confirmation link has expired. Sign in and ask for a new one.")),
        invalid=Invalid(N_("This confirmation link is not valid. Check that you copied all of it, or sign in "
                           "and ask for a new one.")))
    user = session.get(User, data["user"]) if isinstance(data.get("user"), int) else None
    if user is None or user.email != data.get("email") or not user.active:
        raise Invalid(N_("This confirmation link is not valid any more. Sign in and ask for a new one."))
    return user


def _portal_url(path: str) -> str:
    return f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}{path}"


def queue_verification_mail(session: Session, user: User) -> OutboxMessage:
    """Write the "confirm your address" e-mail with a fresh link to the outbox, in the UI language."""
    hours = current_app.config["MESA_VERIFY_LINK_HOURS"]
    lang = str(get_locale())
    with force_locale(lang):
        subject = _("Confirm your e-mail address")
        body = _("Hello %(name)s,\n\nTo open tickets at the help centre, confirm that this address is yours:\n"
                 "%(url)s\n\nThe link works for %(hours)d hours. If you did not create an account, ignore "
                 "this message: nothing happens without the link.\n", name=user.name, hours=hours,
                 url=_portal_url(f"/verify/{make_token(user)}"))
    return queue_text_mail(session, user.email, subject, body, lang)


def queue_existing_account_notice(session: Session, user: User) -> OutboxMessage:
    """Tell the owner of an address that someone tried to register with it (they have an account already)."""
    lang = str(get_locale())
    with force_locale(lang):
        subject = _("Someone tried to create an account with your address")
        body = _("Hello %(name)s,\n\nSomeone tried to create a help-centre account with this address, but you "
                 "have one already. If it was you, sign in here: %(url)s\nIf it was not you, ignore this "
                 "message: nothing was changed.\n", name=user.name, url=_portal_url("/login"))
    return queue_text_mail(session, user.email, subject, body, lang)
