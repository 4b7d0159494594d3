"""Refuse request text the database cannot store: a NUL character (\\0) anywhere in the path, the query string
or a submitted form.

PostgreSQL text cannot hold NUL, so such input used to fail deep in a query (a 500) wherever it was searched
for or saved. One check before every view answers instead: 404 for a path (no page has one), 400 with a
message for the query string or a form.
"""

from __future__ import annotations

from flask import Flask, abort, request

from .domain.errors import N_, Invalid

NUL = "\x00"


def contains_nul(pairs) -> bool:
    """Whether any key or value of a multi-dict's (key, value) pairs holds a NUL character."""
    return any(NUL in key or NUL in value for key, value in pairs)


def refuse_nul_characters() -> None:
    """Before every request: stop text with NUL before a view can store or search for it."""
    if NUL in request.path:
        abort(404)
    if contains_nul(request.args.items(multi=True)):
        raise Invalid(N_("The address contains a NUL character (\\0), which Mesa cannot read. "
                         "Remove it and try again."))
    if request.method in ("POST", "PUT", "PATCH") and contains_nul(request.form.items(multi=True)):
        raise Invalid(N_("The form contains a NUL character (\\0), which cannot be saved. "
                         "Go back, remove it from the text and send it again."))


def init_app(app: Flask) -> None:
    """Register the check."""
    app.before_request(refuse_nul_characters)
