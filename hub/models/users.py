"""People who use the admin and the API, their signed-in admin sessions and their API tokens,
and the checks every way of creating a user or a token goes through (CLI, first-run setup,
admin)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.platform.db import Base, UTCDateTime
from hub.models._types import created_at
from hub.shared.security import hash_api_token, hash_password, new_api_token

ROLES = ("admin", "operator", "viewer")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the token: tokens are random, so a fast hash is enough and lookups are O(1).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AdminSession(Base):
    """One signed-in browser. The session cookie carries a random id and only its hash is
    kept here, so signing out (deleting the row) makes a copied cookie worthless, and a
    password change ends every row of that user."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the cookie's id
    created_at: Mapped[datetime] = created_at()
    # Refreshed at most once a minute; idle rows are refused and pruned at the next sign-in.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


MIN_PASSWORD = 10


class InvalidUser(ValueError):
    pass


def create_user(session: Session, *, email: str, password: str, role: str, now: datetime,
                name: str = "") -> User:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise InvalidUser(f"email {email!r} is not an email address")
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidUser(f"password must be at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise InvalidUser(f"a user with email {email} already exists")
    user = User(email=email, name=name, password_hash=hash_password(password), role=role,
                active=True, created_at=now)
    session.add(user)
    session.flush()
    return user


def create_api_token(session: Session, *, email: str, name: str, now: datetime) -> str:
    """Returns the token in clear, once; only its hash is stored."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise InvalidUser(f"no user with email {email}")
    plain = new_api_token()
    session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_api_token(plain),
                         prefix=plain[:10], created_at=now))
    return plain
