"""Server-side records of admin sessions, so a session can be ended for good.

A signed cookie alone cannot be revoked: a copy saved before sign-out would keep working
until it expired. So each sign-in stores a row keyed by the hash of a random id, the
cookie carries the id, and every request must find its row. Signing out deletes that
one row (the user's other browsers stay signed in); a password change, an admin's reset
or switching a user off deletes all of the user's rows. Only hashes are stored: a copy
of the database opens no session.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.models.users import AdminSession, User

# last_seen_at is written at most this often: a row write per page view buys nothing.
# So it may lag by that much, and a row counts as idle only after `idle` plus this.
TOUCH_EVERY = timedelta(minutes=1)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(s: Session, user_id: int, *, now: datetime) -> str:
    """A new session of the user; returns the id for the cookie (kept nowhere else)."""
    session_id = secrets.token_urlsafe(32)
    s.add(AdminSession(user_id=user_id, token_hash=_hash(session_id), created_at=now, last_seen_at=now))
    return session_id


def find(s: Session, session_id: str, *, now: datetime, idle: timedelta) -> User | None:
    """The user of a live session, or None when it was ended or sat idle too long; marks
    it seen."""
    row = s.execute(select(AdminSession, User).join(User, User.id == AdminSession.user_id)
                    .where(AdminSession.token_hash == _hash(session_id))).first()
    if row is None:
        return None
    record, user = row
    if now - record.last_seen_at > idle + TOUCH_EVERY:
        s.delete(record)
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        s.execute(update(AdminSession).where(AdminSession.id == record.id).values(last_seen_at=now))
    return user


def end(s: Session, session_id: str) -> None:
    s.execute(delete(AdminSession).where(AdminSession.token_hash == _hash(session_id)))


def end_all(s: Session, user_id: int) -> int:
    """Every session of the user (password changed or reset, user switched off)."""
    return s.execute(delete(AdminSession).where(AdminSession.user_id == user_id)).rowcount


def prune(s: Session, *, now: datetime, idle: timedelta) -> None:
    """Rows of sessions nobody used for longer than `idle`: they can never open again."""
    s.execute(delete(AdminSession).where(AdminSession.last_seen_at < now - idle - TOUCH_EVERY))
