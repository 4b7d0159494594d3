"""What the knowledge base is asked when someone describes a problem: the same text for the ask-for-help
form's suggestions (views/help.py) and for the articles an acknowledgement offers (mail_articles.py)."""

from __future__ import annotations

from flask import current_app

MAX_SUGGESTIONS = 5


def suggestion_query(subject: str, description: str) -> str:
    """What the suggestions search for: the subject, then the start of the description."""
    text = " ".join(f"{subject or ''}. {description or ''}".split())
    return text[:current_app.config["MESA_SEARCH_MAX_QUERY"]].strip(" .")
