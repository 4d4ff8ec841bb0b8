"""Creating users and API tokens (CLI, first-run setup, admin)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import ApiToken, User
from hub.models.users import ROLES
from hub.shared.security import hash_api_token, hash_password, new_api_token

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
