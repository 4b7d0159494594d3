"""Refuse request text Mesa cannot read or store: a NUL character (\\0) anywhere in the path, the query string
or a submitted form, and bytes that are not UTF-8 in the query string or a form.

PostgreSQL text cannot hold NUL, so such input used to fail deep in a query (a 500) wherever it was searched
for or saved; bytes that are not UTF-8 were kept as `%FF` or replaced by `\ufffd`, changing what the person
sent. One check before every view answers instead: 404 for a path (no page has one), 400 with a message for
the query string or a form. (Bodies over MAX_CONTENT_LENGTH are answered 413 by portal/errors.py.)
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import Flask, abort, request

from .domain.errors import N_, Invalid

NUL = "\x00"


def contains_nul(pairs) -> bool:
    """Whether any key or value of a multi-dict's (key, value) pairs holds a NUL character."""
    return any(NUL in key or NUL in value for key, value in pairs)


def is_utf8_urlencoded(raw: bytes) -> bool:
    """Whether URL-encoded text (a query string, a form body) decodes to UTF-8 once its %XX escapes are read."""
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def form_is_utf8() -> bool:
    """Whether the submitted form's text is UTF-8: checked on the raw body for a URL-encoded form (which the
    parser would keep as %XX), by the replacement character for a multipart one (which the parser put there)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return is_utf8_urlencoded(request.get_data(cache=True))
    if request.mimetype == "multipart/form-data":
        return not any("\ufffd" in key or "\ufffd" in value for key, value in request.form.items(multi=True))
    return True


def refuse_unreadable_text() -> None:
    """Before every request: text that is not UTF-8 (read from the raw body, so before the form is parsed),
    then NUL (see ``refuse_nul_characters``)."""
    if not is_utf8_urlencoded(request.query_string):
        raise Invalid(N_("The address contains characters that are not valid UTF-8 text. "
                         "Check the link and try again."))
    if request.method in ("POST", "PUT", "PATCH") and not form_is_utf8():
        raise Invalid(N_("The form contains characters that are not valid UTF-8 text, which cannot be saved. "
                         "Go back, retype the text and send it again."))
    refuse_nul_characters()


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
    app.before_request(refuse_unreadable_text)
