"""The UI in Spanish and English: the browser's language picks, a switch overrides (kept in the session)."""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel, lazy_gettext as _l

LANGUAGE_NAMES = {"es": "Español", "en": "English"}

CATEGORY_LABELS = {
    "accounts": _l("Accounts and passwords"),
    "mfa": _l("Multi-factor authentication"),
    "vpn": _l("VPN and remote access"),
    "wifi": _l("Wi-Fi"),
    "email": _l("E-mail and calendar"),
    "printers": _l("Printers and scanning"),
    "hardware": _l("Laptops and hardware"),
    "software": _l("Software"),
    "video-calls": _l("Video calls"),
    "permissions": _l("Permissions and access"),
    "phones": _l("Phones"),
    "security": _l("Security"),
    "onboarding": _l("Joining and leaving"),
    "general": _l("General"),
}


# A ticket's status as the requester reads it (their own words: nothing about levels or escalation)...
STATUS_LABELS = {
    "new": _l("New"),
    "open": _l("In progress"),
    "pending_customer": _l("Waiting for your answer"),
    "escalated": _l("In progress"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
}
# ...and as agents work it.
AGENT_STATUS_LABELS = {
    "new": _l("New"),
    "open": _l("Open"),
    "pending_customer": _l("Waiting for the customer"),
    "escalated": _l("Escalated"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
}
TYPE_LABELS = {"incident": _l("Incident: something is not working"),
               "service_request": _l("Service request: I need something")}
PRIORITY_LABELS = {1: _l("1 Critical"), 2: _l("2 High"), 3: _l("3 Medium"), 4: _l("4 Low"), 5: _l("5 Planning")}
IMPACT_LABELS = {1: _l("High: many people or the whole company"), 2: _l("Medium: my team"), 3: _l("Low: only me")}
URGENCY_LABELS = {1: _l("High: I cannot work"), 2: _l("Medium: I can work with difficulty"),
                  3: _l("Low: it can wait")}


OUTBOX_STATUS_LABELS = {"pending": _l("waiting"), "sent": _l("sent"), "failed": _l("failed")}
MAIL_DISPOSITION_LABELS = {"ticket": _l("new ticket"), "reply": _l("reply"), "refused": _l("refused (automatic)"),
                           "duplicate": _l("duplicate"), "quarantined": _l("quarantined"),
                           "discarded": _l("discarded")}
ARTICLE_STATE_LABELS = {"draft": _l("Draft"), "review": _l("In review"), "published": _l("Published"),
                        "archived": _l("Archived")}
ARTICLE_EVENT_LABELS = {"created": _l("created the draft"), "edited": _l("edited"),
                        "submit": _l("submitted it for review"), "publish": _l("approved and published it"),
                        "send_back": _l("sent it back"), "archive": _l("archived it"),
                        "reopen": _l("reopened it as a draft"), "restored": _l("restored an older revision")}


def article_state_label(state: str) -> str:
    """An article state in the UI language."""
    return str(ARTICLE_STATE_LABELS.get(state, state))


def article_event_label(kind: str) -> str:
    """An article workflow step in the UI language."""
    return str(ARTICLE_EVENT_LABELS.get(kind, kind))


def status_label(status, for_agent: bool = False) -> str:
    """A ticket status in the UI language: as the requester reads it (the default: e-mails go to them), or
    ``for_agent`` as agents work it."""
    value = getattr(status, "value", status)
    return str((AGENT_STATUS_LABELS if for_agent else STATUS_LABELS).get(value, value))


def viewer_status_label(status) -> str:
    """A ticket status as the signed-in viewer reads it: agents see the agents' names, everyone else the
    requester's (templates call this one as ``status_label``)."""
    from flask_login import current_user

    return status_label(status, for_agent=bool(getattr(current_user, "is_agent", False)))


def outbox_status_label(status) -> str:
    """An e-mail's delivery status in the UI language."""
    value = getattr(status, "value", status)
    return str(OUTBOX_STATUS_LABELS.get(value, value))


def mail_disposition_label(disposition) -> str:
    """What an incoming e-mail became, in the UI language."""
    value = getattr(disposition, "value", disposition)
    return str(MAIL_DISPOSITION_LABELS.get(value, value))


def ui_languages() -> list[str]:
    """The UI languages offered, from the MESA_LANGUAGES setting."""
    return [code.strip() for code in current_app.config["MESA_LANGUAGES"].split(",") if code.strip()]


def select_locale() -> str:
    """The language chosen with the switch, else the browser's best match, else the first offered."""
    offered = ui_languages()
    chosen = session.get("ui_lang")
    if chosen in offered:
        return chosen
    return request.accept_languages.best_match(offered) or offered[0]


def category_label(category: str) -> str:
    """The category's name in the UI language (unknown ids are shown as they are)."""
    label = CATEGORY_LABELS.get(category)
    return str(label) if label is not None else category.replace("-", " ").capitalize()


def init_app(app: Flask) -> None:
    """Set up Flask-Babel and the template helpers for languages and categories."""
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(category_label=category_label, language_names=LANGUAGE_NAMES,
                                 status_label=viewer_status_label, type_labels=TYPE_LABELS,
                                 priority_labels=PRIORITY_LABELS, impact_labels=IMPACT_LABELS,
                                 urgency_labels=URGENCY_LABELS, category_labels=CATEGORY_LABELS,
                                 article_state_label=article_state_label, article_event_label=article_event_label,
                                 outbox_status_label=outbox_status_label,
                                 mail_disposition_label=mail_disposition_label)

    @app.context_processor
    def language_helpers():
        from flask_babel import get_locale

        return {"ui_languages": ui_languages(), "current_language": str(get_locale())}
