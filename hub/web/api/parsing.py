"""How /api/v1 reads a request before any view runs: ids in paths, query strings, JSON bodies.

Path ids wider than their column answer 404 (no such row can exist) instead of reaching
the database; 20 digits or more do not match the route at all (404 too). Every string in
a query or a JSON body, at any depth (free-form settings and template variables
included), is screened for NUL and lone surrogates, which no column can store; the 422
names the field the way schema errors do. A body that is not JSON is a 4xx, never an
empty object."""
from __future__ import annotations

from typing import Any

import flask_smorest
from flask_smorest import abort
from marshmallow import ValidationError as SchemaError
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import BaseConverter

from hub.web.api.fields import INT32_MAX, INT64_MAX, text_problem


class IdConverter(BaseConverter):
    """<id:name>: the id of a table with a 32-bit INTEGER primary key."""

    regex = r"\d{1,19}"
    max_id = INT32_MAX

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= self.max_id:  # no row can have it: 404, before any query
            abort(404, message=f"nothing has id {value}: ids here run from 1 to {self.max_id}")
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class BigIdConverter(IdConverter):
    """<bigid:name>: the id of a table with a 64-bit (BigId) primary key."""

    max_id = INT64_MAX


def converter_schema(converter: IdConverter) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": converter.max_id}


MAX_DEPTH = 32  # far past any body the API takes; deeper ones would only strain the JSON columns


class TooDeep(ValueError):
    pass


def _screen(value: Any, depth: int = 0) -> Any:
    """Errors shaped like the value (marshmallow's nesting), or None when all text is storable."""
    if depth > MAX_DEPTH:
        raise TooDeep()
    if isinstance(value, str):
        problem = text_problem(value)
        return [problem] if problem else None
    if isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return None
    errors: dict[Any, Any] = {}
    for key, item in items:
        problem = _screen(key) if isinstance(key, str) else None
        found = problem or _screen(item, depth + 1)
        if found:
            errors[key] = found
    return errors or None


class ApiParser(FlaskParser):
    def load_json(self, req: Any, schema: Any) -> Any:
        if not is_json_request(req) and req.get_data(cache=True):
            abort(415, message="send the body as JSON with Content-Type: application/json",
                  errors={"json": ["expected a JSON object"]})
        try:
            data = super().load_json(req, schema)
            errors = _screen(data)
        except (RecursionError, TooDeep):
            abort(400, message=f"the JSON body is nested more than {MAX_DEPTH} levels deep",
                  errors={"json": ["nested too deeply"]})
        if errors:
            raise SchemaError(errors)
        return data

    def load_querystring(self, req: Any, schema: Any) -> Any:
        errors = _screen({key: req.args.getlist(key) for key in req.args})
        if errors:
            # One value per name in the message, as the schema's errors read.
            raise SchemaError({key: next(iter(found.values())) if isinstance(found, dict) else found
                               for key, found in errors.items()})
        return super().load_querystring(req, schema)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint reading arguments with the ApiParser."""

    ARGUMENTS_PARSER = ApiParser()
