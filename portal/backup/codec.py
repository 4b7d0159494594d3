"""Column values as JSON and back, chosen by the column's type, so a backup restores on SQLite and PostgreSQL.

Timestamps become ISO 8601 text (UTC with its offset when the column keeps a zone), binary data base64,
exact decimals text; enums their stored string; JSON, booleans, numbers and text stay as they are.
A type not listed here is refused by name rather than written in a form that might not come back.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable

from sqlalchemy import (JSON, Boolean, Column, Date, DateTime, Enum, Float, Integer, LargeBinary, Numeric, String,
                        Time, Uuid)
from sqlalchemy.types import TypeDecorator, TypeEngine

from . import BackupError

Codec = tuple[Callable[[object], object], Callable[[object], object]]


def _same(value):
    return value


def _encode_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.isoformat()


def _decode_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _encode_float(value):
    return float(value)


def _decode_float(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _decode_integer(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _decode_boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _decode_text(value):
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _encode_enum_for(type_: Enum) -> Callable[[object], object]:
    """An enum member as the string the column stores (its value or its name, as the column says)."""
    stored = dict(zip(type_.enum_class, type_.enums)) if type_.enum_class is not None else {}

    def encode(value):
        return stored[value] if isinstance(value, enum.Enum) else value

    return encode


def _decode_enum_for(type_: Enum) -> Callable[[object], object]:
    stored = list(type_.enums)

    def decode(value):
        if value not in stored:
            raise ValueError(f"{value!r} is not one of {', '.join(stored)}")
        return value  # SQLAlchemy's Enum accepts the stored string as well as the member

    return decode


def _base_type(column: Column) -> TypeEngine:
    """The type whose values a column holds: a TypeDecorator known to keep its base type's values (Mesa's
    UTCDateTime: a datetime) counts as that type; any other is refused, as its values could be anything."""
    from ..domain.models import UTCDateTime

    type_ = column.type
    if isinstance(type_, TypeDecorator):
        if not isinstance(type_, UTCDateTime):
            raise _unsupported(column)
        type_ = type_.impl_instance
    return type_


def _unsupported(column: Column) -> BackupError:
    return BackupError(f"Column {column.table.name}.{column.name} has the type {type(column.type).__name__}, "
                       f"which backups cannot write yet (add it to portal/backup/codec.py).")


def codec_for(column: Column) -> Codec:
    """(encode, decode) for values of this column; BackupError for a type backups do not know."""
    type_ = _base_type(column)
    # Order matters: Enum is a String, Float a Numeric.
    if isinstance(type_, JSON):
        return _same, _same
    if isinstance(type_, Enum):
        return _encode_enum_for(type_), _decode_enum_for(type_)
    if isinstance(type_, DateTime):
        return _encode_datetime, _decode_datetime
    if isinstance(type_, Date):
        return dt.date.isoformat, dt.date.fromisoformat
    if isinstance(type_, Time):
        return dt.time.isoformat, dt.time.fromisoformat
    if isinstance(type_, Boolean):
        return bool, _decode_boolean
    if isinstance(type_, Float):
        return _encode_float, _decode_float
    if isinstance(type_, Numeric):
        return str, lambda text: decimal.Decimal(_decode_text(text))
    if isinstance(type_, Integer):
        return int, _decode_integer
    if isinstance(type_, LargeBinary):
        return (lambda data: base64.b64encode(bytes(data)).decode("ascii"),
                lambda text: base64.b64decode(_decode_text(text), validate=True))
    if isinstance(type_, Uuid):
        return str, lambda text: uuid.UUID(_decode_text(text)) if type_.as_uuid else _decode_text(text)
    if isinstance(type_, String):
        return _same, _decode_text
    raise _unsupported(column)


class RowCodec:
    """Turns one table's rows into JSON objects and back (None stays null in every column)."""

    def __init__(self, table):
        self.table = table
        self.columns = [column.name for column in table.columns]
        self._codecs = {column.name: codec_for(column) for column in table.columns}

    def encode(self, row) -> dict:
        """A row (a mapping from column name to value) as a JSON-ready dict."""
        return {name: None if row[name] is None else self._codecs[name][0](row[name]) for name in self.columns}

    def decode(self, values: dict) -> dict:
        """A dict read from a backup as the values to insert; ValueError names what is wrong."""
        if not isinstance(values, dict):
            raise ValueError("a row must be a JSON object")
        if set(values) != set(self.columns):
            missing, extra = set(self.columns) - set(values), set(values) - set(self.columns)
            raise ValueError(f"the row's columns differ from the table's (missing: {sorted(missing)}, "
                             f"unknown: {sorted(extra)})")
        decoded = {}
        for name in self.columns:
            value = values[name]
            try:
                decoded[name] = None if value is None else self._codecs[name][1](value)
            except (ValueError, TypeError, decimal.InvalidOperation) as exc:
                raise ValueError(f"column {name}: {exc}") from None
        return decoded
