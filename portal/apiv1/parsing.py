"""How the API reads request bodies and parameters: webargs through flask-smorest, with Mesa's errors.

Bad input answers 400 with the one error shape of Mesa (``{"error": "..."}``), naming each wrong field.
"""

from __future__ import annotations

from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser

from ..domain.errors import N_, Invalid
from .tokens import authenticate_api_request

NUL = "\x00"
BIGGEST_ID = 2**31 - 1  # ids are 32-bit integers in the database; anything larger names nothing


def describe_problems(messages, path: str = "") -> list[str]:
    """Marshmallow's nested error messages as "field: message" lines."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            inner = f"{path}.{key}" if path else str(key)
            if key in ("json", "query", "querystring", "view_args") and not path:
                inner = ""
            lines.extend(describe_problems(value, inner))
        return lines
    if isinstance(messages, (list, tuple)):
        return [line for item in messages for line in describe_problems(item, path)]
    return [f"{path}: {messages}" if path else str(messages)]


def contains_nul(value) -> bool:
    """Whether a decoded JSON value holds a NUL character in any key or text."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


class MesaParser(FlaskParser):
    """webargs' Flask parser whose errors are Mesa's: Invalid (400) with the problems spelled out."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        """A field is missing or of the wrong type: say which and why."""
        raise Invalid(N_("The request is not valid: %(problems)s"),
                      problems="; ".join(describe_problems(error.messages)))

    def load_json(self, req, schema):
        """The JSON body; refused when any of its texts holds a NUL character (PostgreSQL cannot store it)."""
        data = super().load_json(req, schema)
        if contains_nul(data):
            raise Invalid(N_("The request contains a NUL character (\\0), which cannot be saved. Remove it and "
                             "send it again."))
        return data

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        """The body is not JSON (or not UTF-8)."""
        raise Invalid(N_("The request body is not valid JSON (UTF-8)."))


class Blueprint(SmorestBlueprint):
    """A flask-smorest blueprint of the API: parses with MesaParser, authenticates every request first."""

    ARGUMENTS_PARSER = MesaParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(authenticate_api_request)


def checked_id(value: int) -> int:
    """A path id the database can hold, else the same 404 as any id that names nothing."""
    from ..domain.errors import NotFound

    if not 1 <= value <= BIGGEST_ID:
        raise NotFound(N_("There is nothing with the number %(number)s."), number=value)
    return value
