"""A visit in one round trip on PostgreSQL: the hot path of every ad click.

The link lookup and the INSERT are one statement (a data-modifying CTE), so the link
is read in the same snapshot that writes the visit: an edited or disabled link takes
effect on the very next click, in every process, with no cache to invalidate. The
statement runs in autocommit on the pool's driver connection: no ORM session, no
SQLAlchemy statement machinery, no BEGIN or COMMIT, one network round trip. The visit
is committed before the redirect is answered, so no answered visit lives only in memory.

Why asynchronous commit (`set_config('synchronous_commit', 'off', true)` inside the
statement, which is its own transaction, so the setting covers exactly its commit): a
click is not a payment. On a database crash the visits of the last fraction of a second
may be lost (the database itself stays consistent); in exchange no redirect waits for
the disk.
"""
from __future__ import annotations

from typing import Any, Mapping

import psycopg

from hub.platform.db import Database
from hub.models import Visit

CONNECTION_ATTEMPTS = 3
_FIELDS = tuple(c.name for c in Visit.__table__.columns
                if c.name not in ("id", "link_id", "code", "live_code", "visited_at", "matched_at"))

# A number the visitor cannot be sent to (no digits, not a Telegram bot's "@name")
# records nothing, as before (visits.chat_url decides the same in Python).
_VISIT_SQL = f"""
WITH link AS (
    SELECT tl.id, tl.text_template, tl.static_code, ch.display_number
    FROM tracked_links tl JOIN channels ch ON ch.id = tl.channel_id
    WHERE tl.slug = %(slug)s AND tl.active
), visit AS (
    INSERT INTO tracking_visits (link_id, code, live_code, visited_at, {", ".join(_FIELDS)})
    SELECT link.id, COALESCE(link.static_code, %(code)s),
           CASE WHEN link.static_code IS NULL THEN %(code)s END, %(visited_at)s,
           {", ".join(f"%({name})s" for name in _FIELDS)}
    FROM link, (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
    WHERE link.display_number ~ '[0-9]' OR link.display_number ~ '^@[A-Za-z][A-Za-z0-9_]{{2,31}}$'
    RETURNING code
)
SELECT link.text_template, link.display_number, (SELECT code FROM visit) FROM link
"""


def insert_visit(db: Database, slug: str, code: str, fields: Mapping[str, Any],
                 visited_at: Any) -> tuple[str, str, str | None] | None:
    """(text template, display number, stored code or None) of the active link `slug`,
    with the visit committed; None when there is no such link. A code taken by a live
    visit raises psycopg's UniqueViolation, with nothing written."""
    params = {name: fields.get(name) for name in _FIELDS}
    params.update(slug=slug, code=code, visited_at=visited_at)
    for attempt in range(CONNECTION_ATTEMPTS):
        try:
            return _execute(db, params)
        except psycopg.OperationalError:
            # A pooled connection the server dropped (restart, idle timeout): it is
            # discarded and the click tried on another. Had the dead one committed
            # before failing, the visitor's visit is recorded twice: a harmless orphan.
            if attempt == CONNECTION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _execute(db: Database, params: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
    pooled = db.engine.raw_connection()
    try:
        conn = pooled.driver_connection
        conn.autocommit = True  # the pool hands out idle connections: no round trip
        try:
            row = conn.execute(_VISIT_SQL, params).fetchone()
        except psycopg.IntegrityError:
            raise  # that statement alone failed; the connection is fine
        except BaseException:
            pooled.invalidate()  # broken or in an unknown state: never reused
            raise
        finally:
            if not conn.closed:
                conn.autocommit = False
    finally:
        pooled.close()  # back to the pool
    return None if row is None else (row[0], row[1], row[2])
