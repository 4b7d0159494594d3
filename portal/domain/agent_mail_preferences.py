"""Which notification e-mails an agent wants, and in which language: read (all on when never saved) and saved.

These functions never commit: the view that saves commits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from .errors import N_, Invalid
from .models import AgentMailPreferences, User

# The kinds of notification an agent can turn off, in the order the account page lists them; each is a
# boolean column of AgentMailPreferences.
KINDS = ("assigned", "escalated", "customer_replied", "reopened", "sla_warning")


def preferences_of(session: Session, user: User) -> AgentMailPreferences:
    """The user's preferences; a fresh, unsaved all-on object when they never saved any."""
    saved = session.get(AgentMailPreferences, user.id)
    if saved is not None:
        return saved
    return AgentMailPreferences(user_id=user.id, language="", **{kind: True for kind in KINDS})


def wants(session: Session, user: User, kind: str) -> bool:
    """Whether the user gets notifications of this kind (every kind is on until they turn it off)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return bool(getattr(preferences_of(session, user), kind))


def save(session: Session, user: User, enabled: set[str], language: str, languages: list[str]
         ) -> AgentMailPreferences:
    """Store which kinds the agent wants (the others are off) and their language ("" or one of
    ``languages``); Invalid for a non-agent, an unknown kind or an unknown language."""
    if not user.is_agent:
        raise Invalid(N_("Only agents get these notifications."))
    unknown = set(enabled) - set(KINDS)
    if unknown:
        raise Invalid(N_("Unknown notification kind: %(kinds)s."), kinds=", ".join(sorted(unknown)))
    if language and language not in languages:
        raise Invalid(N_("Unknown language '%(language)s'."), language=language)
    preferences = session.get(AgentMailPreferences, user.id)
    if preferences is None:
        preferences = AgentMailPreferences(user_id=user.id)
        session.add(preferences)
    for kind in KINDS:
        setattr(preferences, kind, kind in enabled)
    preferences.language = language
    session.flush()
    return preferences
