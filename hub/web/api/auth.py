"""Bearer API tokens for /api/v1: every call is authenticated; writes need a role."""
from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, Callable

from flask import g, request
from flask_smorest import abort
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import ApiToken, OperatorState, User
from hub.shared.security import hash_api_token
from hub.web.lookups import current_runtime

LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every call


def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, message="missing API token: send 'Authorization: Bearer <token>'",
              headers={"WWW-Authenticate": 'Bearer realm="hub"'})
    runtime = current_runtime()
    now = utcnow()
    with runtime.db.scope() as session:
        row = session.execute(
            select(ApiToken, User, OperatorState)
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(OperatorState, OperatorState.user_id == User.id)
            .where(ApiToken.token_hash == hash_api_token(token.strip()))
        ).first()
        if row is None or row[0].revoked_at is not None or not row[1].active:
            abort(401, message="invalid or revoked API token",
                  headers={"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'})
        api_token, user, presence = row
        if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
            api_token.last_used_at = now
        if presence is not None and presence.presence != "offline" and (
                presence.seen_at is None or now - presence.seen_at > LAST_USED_RESOLUTION):
            presence.seen_at = now  # a request keeps an operator's presence from timing out
        g.api_user = {"id": user.id, "email": user.email, "role": user.role}


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.api_user["role"] not in roles:
                abort(403, message=f"this call needs the role {' or '.join(roles)}; "
                                   f"your token's user is {g.api_user['role']}")
            return view(*args, **kwargs)
        return wrapped
    return decorator
