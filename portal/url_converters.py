"""The ``int`` converter of Mesa's URLs: ASCII digits only, from 0 to the largest id the database holds.

Werkzeug's own reads any Unicode decimal digit and any size: ``/tickets/9223372036854775808`` reached the
database and failed there (a 500). Registered as ``int`` before the blueprints, so every ``<int:...>`` route
(present and future) uses it; anything else is "no such page" (404).
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter, ValidationError

from .domain.numbers import parse_int


class BoundedIntConverter(BaseConverter):
    """``<int:name>``: 0 to MAX_ID, written in ASCII digits."""

    regex = r"[0-9]{1,10}"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        """The id, or a non-match (404) when it is out of range."""
        number = parse_int(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        """The number as ASCII digits."""
        return str(int(value))


def init_app(app: Flask) -> None:
    """Replace Werkzeug's ``int`` converter (call before registering the blueprints)."""
    app.url_map.converters["int"] = BoundedIntConverter
