"""Signed, timestamped tokens for the links Mesa e-mails (address confirmation, password reset, the one-click
links of requesters' mails): itsdangerous with the secret key and one salt per kind, so a token of one kind
never stands for another. Each kind says what its token holds and what a bad one means to the reader."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .domain.errors import DomainError


def make_token(salt: str, data: dict) -> str:
    """A token holding ``data``, signed for links of the kind ``salt`` names."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt).dumps(data)


def read_token(salt: str, token: str, max_age_seconds: float, expired: DomainError, invalid: DomainError) -> dict:
    """The data of a valid token of this kind made less than ``max_age_seconds`` ago; ``expired`` is raised
    for an older one, ``invalid`` for one Mesa did not sign (tampered, cut short, another kind) or whose data
    is not a mapping."""
    try:
        data = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt).loads(token,
                                                                                          max_age=max_age_seconds)
    except SignatureExpired:
        raise expired from None
    except BadSignature:
        raise invalid from None
    if not isinstance(data, dict):
        raise invalid
    return data
