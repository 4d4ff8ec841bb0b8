"""Each operator's open conversations, as routing reads them: operator_states.open_chats,
which the database's triggers on conversations keep in step (migration 0028).

recount() rewrites the counters from the conversations themselves: the repair
`hub routing recount` runs should a counter ever be suspected, and what tests compare.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

_REAL = """SELECT assignee_id AS user_id, count(*) AS n FROM conversations
           WHERE status = 'open' AND assignee_id IS NOT NULL GROUP BY assignee_id"""

# Rows whose counter is off, with the right figure: operators with open chats (a missing
# state row shows as a null counter) and counters above zero with none.
_WRONG = f"""SELECT r.user_id, r.n FROM ({_REAL}) r LEFT JOIN operator_states s ON s.user_id = r.user_id
             WHERE s.open_chats IS NULL OR s.open_chats <> r.n
             UNION ALL
             SELECT s.user_id, 0 FROM operator_states s LEFT JOIN ({_REAL}) r ON r.user_id = s.user_id
             WHERE r.user_id IS NULL AND s.open_chats <> 0"""


def wrong(session: Session) -> dict[int, int]:
    """{user_id: the real count} for every counter that differs from it."""
    return {user_id: n for user_id, n in session.execute(text(_WRONG))}


def recount(session: Session) -> dict[int, int]:
    """Set every wrong counter to the real count. Returns what was fixed. On PostgreSQL
    conversations are locked against writes until the caller commits, so that no chat
    changes hands between the count and the write (SQLite has one writer at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE conversations IN SHARE MODE"))
    fixed = wrong(session)
    for user_id, n in fixed.items():
        session.execute(text(
            "INSERT INTO operator_states (user_id, presence, capacity, open_chats, changed_at) "
            "VALUES (:user_id, 'offline', 5, :n, CURRENT_TIMESTAMP) "
            "ON CONFLICT (user_id) DO UPDATE SET open_chats = excluded.open_chats"), {"user_id": user_id, "n": n})
    return fixed
