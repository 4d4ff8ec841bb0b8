"""What every request handler of the web layer reaches the same way: the hub's runtime, its
database, and a row by id or a 404.

The admin and the REST API answer a missing row differently, and both answers are kept as
they were: the admin with Flask's bare 404 page (`get_or_404`, and `detached_or_404` for a
row read in a transaction of its own), the API with flask-smorest's JSON error whose message
names what was asked for (`api_get_or_404`: "no channel with id 7", the message the OpenAPI
document and the API's clients see).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app
from flask_smorest import abort as api_abort

Row = TypeVar("Row")


def current_runtime() -> Any:
    """The hub's runtime of the app serving this request."""
    return current_app.extensions["hub"]


def db() -> Any:
    """The database of the app serving this request (its `scope()` opens a session)."""
    return current_app.extensions["hub"].db


def _found(session: Any, model: type[Row], ident: Any, where: Callable[[Row], bool] | None) -> Row | None:
    row = session.get(model, ident)
    if row is None or (where is not None and not where(row)):
        return None
    return row


def get_or_404(session: Any, model: type[Row], ident: Any, *,
               where: Callable[[Row], bool] | None = None) -> Row:
    """The admin's lookup: the row with this primary key, or Flask's 404 page. With `where`,
    a row it refuses (a channel of another kind, an inactive user) is not found either."""
    row = _found(session, model, ident, where)
    if row is None:
        abort(404)
    return row


def detached_or_404(model: type[Row], ident: Any, *, where: Callable[[Row], bool] | None = None) -> Row:
    """The admin's lookup outside a session: the row, read in a transaction of its own and
    detached from it, or Flask's 404 page."""
    with db().scope() as s:
        row = get_or_404(s, model, ident, where=where)
        s.expunge(row)
    return row


def api_get_or_404(session: Any, model: type[Row], ident: Any, what: str, *,
                   where: Callable[[Row], bool] | None = None) -> Row:
    """The API's lookup: the row with this primary key, or a JSON 404 "no <what> with id <ident>".
    With `where`, a row it refuses is not found either."""
    row = _found(session, model, ident, where)
    if row is None:
        api_abort(404, message=f"no {what} with id {ident}")
    return row
