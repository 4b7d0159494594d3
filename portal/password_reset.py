"""Password reset by e-mail: signed, expiring, single-use links, and the mail that carries one.

A link carries the account's id and address and a fingerprint of its current password hash, signed with the
secret key (itsdangerous, as the verification links of portal/verification.py) with a timestamp: it cannot be
forged, it expires after MESA_PASSWORD_RESET_HOURS, and it stops working once the password changes, so it
works once. Following it proves the person reads the address, so the address counts as verified after.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app
from flask_babel import force_locale, get_locale, gettext as _
from sqlalchemy.orm import Session

from . import signed_links
from .domain import users as user_service
from .domain.errors import N_, Invalid
from .domain.models import OutboxMessage, User
from .text_mail import queue_text_mail

SALT = "mesa-password-reset"


def password_fingerprint(user: User) -> str:
    """A short digest of the account's password hash (the hash itself never goes into a link): it changes
    whenever the password does, also for an account that had none."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:20]


def make_token(user: User) -> str:
    """A reset token for the account as it is now."""
    return signed_links.make_token(SALT, {"user": user.id, "email": user.email, "pw": password_fingerprint(user)})


def read_token(session: Session, token: str) -> User:
    """The active account a valid, unexpired, unused token was made for; Invalid with a clear message
    otherwise."""
    data = signed_links.read_token(
        SALT, token, current_app.config["MESA_PASSWORD_RESET_HOURS"] * 3600,
        expired=Invalid(N_("This password-reset link has expired. Ask for a new one.")),
        invalid=Invalid(N_("This password-reset link is not valid. Check that you copied all of it, or ask for a "
                           "new one.")))
    user = session.get(User, data["user"]) if isinstance(data.get("user"), int) else None
    if user is None or not user.active or user.email != data.get("email") \
            or not hmac.compare_digest(password_fingerprint(user), str(data.get("pw", ""))):
        raise Invalid(N_("This password-reset link was used already or is no longer valid. Ask for a new one."))
    return user


def set_new_password(user: User, password: str) -> None:
    """Give the account its new password (same rules as registration): every session signed in before ends,
    the link stops working, and the address counts as verified (the link was read there)."""
    if len(password or "") < user_service.MIN_PASSWORD_LENGTH:
        raise Invalid(N_("The password must have at least %(min)d characters."),
                      min=user_service.MIN_PASSWORD_LENGTH)
    user.set_password(password)  # a new session token too: other sessions of the user end
    user_service.mark_verified(user)


def queue_reset_mail(session: Session, user: User) -> OutboxMessage:
    """Write the e-mail with a fresh reset link to the outbox, in the UI language of the request."""
    hours = current_app.config["MESA_PASSWORD_RESET_HOURS"]
    url = f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}/password/reset/{make_token(user)}"
    with force_locale(str(get_locale())):
        subject = _("Choose a new password")
        body = _("Hello %(name)s,\n\nSomeone (we hope you) asked to choose a new password for your help-centre "
                 "account. Choose it here:\n%(url)s\n\nThe link works for %(hours)d hours and only once. If you "
                 "did not ask for it, ignore this message: your password stays as it is.\n",
                 name=user.name, url=url, hours=hours)
    return queue_text_mail(session, user.email, subject, body, str(get_locale()))


def queue_welcome_mail(session: Session, user: User, admin: User) -> OutboxMessage:
    """Write the e-mail that tells someone an admin made them an account, with a link to choose its password
    (a reset link: signed, expiring after MESA_PASSWORD_RESET_HOURS, working once), in the request's language."""
    hours = current_app.config["MESA_PASSWORD_RESET_HOURS"]
    url = f"{current_app.config['MESA_PORTAL_URL'].rstrip('/')}/password/reset/{make_token(user)}"
    with force_locale(str(get_locale())):
        subject = _("Your help-desk account: choose your password")
        body = _("Hello %(name)s,\n\n%(admin)s made you an account on the help desk, for %(email)s. Choose its "
                 "password here:\n%(url)s\n\nThe link works for %(hours)d hours and only once; when it has "
                 "expired, use \"Forgot your password?\" on the sign-in page.\n",
                 name=user.name, admin=admin.name, email=user.email, url=url, hours=hours)
    return queue_text_mail(session, user.email, subject, body, str(get_locale()))
