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
    app.jinja_env.globals.update(category_label=category_label, language_names=LANGUAGE_NAMES)

    @app.context_processor
    def language_helpers():
        from flask_babel import get_locale

        return {"ui_languages": ui_languages(), "current_language": str(get_locale())}
