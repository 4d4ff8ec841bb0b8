"""Database leases: at most one holder per name, taken over once it expires."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.platform.db import Database
from hub.models import Lease


def try_acquire(db: Database, name: str, holder: str, *, now: datetime, ttl: float) -> bool:
    """Take or renew the lease; True when `holder` holds it until now + ttl."""
    expires = now + timedelta(seconds=ttl)
    with db.scope() as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(
                holder=holder,
                expires_at=expires,
                acquired_at=case((Lease.holder == holder, Lease.acquired_at), else_=now),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            return True
        if session.scalar(select(Lease.name).where(Lease.name == name)) is not None:
            return False
    try:
        with db.scope() as session:
            session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=expires))
        return True
    except IntegrityError:
        return False  # someone created it first


def holder_of(session: Session, name: str, *, now: datetime) -> str | None:
    lease = session.get(Lease, name)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder


def release(db: Database, name: str, holder: str) -> None:
    with db.scope() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
