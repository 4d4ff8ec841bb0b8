"""PostgreSQL race tests: wait until a second transaction really waits on a lock."""
from __future__ import annotations

import time

from sqlalchemy import text


def wait_for_lock_waiter(runtime, what: str = "the second transaction") -> None:
    """Block until some session of the test database waits on a lock, else fail."""
    deadline = time.monotonic() + 30
    with runtime.db.engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar():
                return
            conn.rollback()  # PostgreSQL shows pg_stat_activity as of the transaction's first read
            time.sleep(0.01)
    raise AssertionError(f"{what} never waited for the first one's lock")
