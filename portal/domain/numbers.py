"""Whole numbers typed by people (form fields, query strings, ids in addresses): one strict reading for all.

Python's ``str.isdigit()`` is true for ``²`` and ``int()`` reads Arabic-Indic digits and numbers of any size,
which the database cannot hold (PostgreSQL's INTEGER ends at 2^31 - 1; SQLite refuses 2^63). Only ASCII digits
within a bound are read here; anything else is "no number".
"""

from __future__ import annotations

import re

MAX_ID = 2**31 - 1  # the largest value of an INTEGER column on PostgreSQL (and so of every id in Mesa)
ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


def parse_int(raw, low: int = 0, high: int = MAX_ID) -> int | None:
    """``raw`` (text of ASCII digits, surrounding spaces allowed, or an int) as an int from ``low`` to ``high``;
    None for anything else (empty, signs, other digits, out of range)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and ASCII_WHOLE_NUMBER.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        return None
    return value if low <= value <= high else None


def parse_id(raw) -> int | None:
    """A row id (1 to MAX_ID) from a form field or query string, or None."""
    return parse_int(raw, low=1)
