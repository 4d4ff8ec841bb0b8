"""Field types every API schema uses, so input is refused with a 422 that names the field
instead of reaching a column that cannot hold it: ids within the id column's integer width
(32-bit INTEGER for most tables, 64-bit for BigId ones; PostgreSQL refuses a wider number,
SQLite's driver overflows past 64 bits) and text within its column's length, without NUL
(PostgreSQL text cannot hold it) or lone surrogates (not encodable as UTF-8)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError, fields, validate
from sqlalchemy import BigInteger, inspect

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def id_max(model: type) -> int:
    """The largest id the model's primary key column can hold on every supported database."""
    (column,) = inspect(model).primary_key
    return INT64_MAX if isinstance(column.type, BigInteger) else INT32_MAX


def text_problem(value: str) -> str | None:
    """Why no column can store this text, or None."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogates (unpaired \\ud800-\\udfff escapes)"
    return None


def _storable(value: str) -> None:
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem)


def _checks(first: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """The field's own checks, then any the caller adds."""
    extra = kwargs.pop("validate", None)
    if extra is not None:
        first.extend(extra if isinstance(extra, (list, tuple)) else [extra])
    return first


class Id(fields.Integer):
    """The id of a row of `model`: 1 up to what its id column holds."""

    def __init__(self, model: type, **kwargs: Any):
        self.max_id = id_max(model)
        in_range = validate.Range(1, self.max_id, error=f"must be an id from 1 to {self.max_id}")
        super().__init__(validate=_checks([in_range], kwargs), **kwargs)


class Int(fields.Integer):
    """A bounded integer (a count, a limit) that fits a 32-bit column by default."""

    def __init__(self, minimum: int = 0, maximum: int = INT32_MAX, **kwargs: Any):
        super().__init__(validate=_checks([validate.Range(minimum, maximum)], kwargs), **kwargs)


class Moment(fields.AwareDateTime):
    """An ISO 8601 time with a zone that is still a time once in UTC (the columns' zone):
    0001-01-01T00:00+14:00 is not."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(timezone.utc)
        except OverflowError:
            raise ValidationError("out of range once in UTC") from None


class Text(fields.String):
    """A string of at most `max_length` characters that a text column can store."""

    def __init__(self, max_length: int, *, min_length: int | None = None, **kwargs: Any):
        super().__init__(validate=_checks([validate.Length(min_length, max_length), _storable], kwargs), **kwargs)
