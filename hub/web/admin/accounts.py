"""People and API tokens: admins add users, change their role or switch them off, and
create API tokens (shown once, only their hash is kept) or revoke them."""
from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import ApiToken, User
from hub.models.users import MIN_PASSWORD, ROLES, InvalidUser, create_api_token, create_user
from hub.web.admin import bp, sessions
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values
from hub.web.lookups import db, get_or_404

ROLE_LABELS = {"admin": _l("Admin: everything"), "operator": _l("Operator: the inbox"),
               "viewer": _l("Viewer: reads only")}


class UserForm(Schema):
    email = fields.Email(required=True, metadata={"label": _l("E-mail")})
    name = fields.String(load_default="", validate=validate.Length(max=200), metadata={"label": _l("Name")})
    role = fields.String(required=True, validate=validate.OneOf(ROLES), metadata={
        "label": _l("Role"), "choices": [(r, ROLE_LABELS[r]) for r in ROLES]})
    password = fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD), metadata={
        "label": _l("Password"), "secret": True, "help": _l("At least %(n)s characters.", n=MIN_PASSWORD)})


def _user_choices(users: list[User]) -> list[tuple[str, str]]:
    return [(str(u.id), f"{u.email} ({u.role})") for u in users if u.active]


def _token_form_class(users: list[User]) -> type[Schema]:
    class TokenForm(Schema):
        user_id = fields.Integer(required=True, metadata={
            "label": _l("For user"), "choices": _user_choices(users),
            "help": _l("The token acts with this user's role.")})
        name = fields.String(required=True, validate=validate.Length(1, 200), metadata={
            "label": _l("Token name"), "placeholder": "crm-sync", "help": _l("Where the token is used.")})
    return TokenForm


def _page(*, user_values=None, user_errors=None, token_values=None, token_errors=None, status=200) -> Any:
    with db().scope() as s:
        users = list(s.scalars(select(User).order_by(User.id)))
        tokens = s.execute(select(ApiToken, User.email).join(User, User.id == ApiToken.user_id)
                           .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())).all()
    token_form = _token_form_class(users)
    return render_template(
        "admin/users.html", users=users, tokens=tokens, roles=ROLES, role_labels=ROLE_LABELS,
        user_fields=fields_for(UserForm, values=user_values, errors=user_errors, submitted=bool(user_values)),
        user_form_errors=(user_errors or {}).get("_schema", []),
        token_fields=fields_for(token_form, values=token_values, errors=token_errors,
                                submitted=bool(token_values), id_prefix="token-"),
        token_form_errors=(token_errors or {}).get("_schema", []),
    ), status


@bp.get("/users")
@roles(*ADMIN)
def users() -> Any:
    return _page()


@bp.post("/users")
@roles(*ADMIN)
def user_create() -> Any:
    data, errors = read_form(UserForm, request.form, creating=True)
    if not errors:
        try:
            loaded = UserForm().load(data)
            with db().scope() as s:
                create_user(s, now=utcnow(), **loaded)
        except ValidationError as exc:
            errors = flatten_errors(exc.messages)
        except InvalidUser as exc:
            errors = {"email" if "email" in str(exc) else "_schema": [str(exc)]}
    if errors:
        return _page(user_values=submitted_values(request.form), user_errors=errors, status=422)
    flash(_("User %(email)s added.", email=data["email"].strip().lower()), "success")
    return redirect(url_for("admin.users"))


def _active_admins(s: Any) -> int:
    return len(list(s.scalars(select(User.id).where(User.role == "admin", User.active.is_(True)))))


@bp.post("/users/<int:user_id>")
@roles(*ADMIN)
def user_update(user_id: int) -> Any:
    """Change a user's role or switch them on or off (never the last admin)."""
    role = request.form.get("role", "")
    active = request.form.get("active") == "on"
    if role not in ROLES:
        flash(_("Choose a role."), "error")
        return redirect(url_for("admin.users"))
    with db().scope() as s:
        user = get_or_404(s, User, user_id)
        losing_admin = user.role == "admin" and user.active and (role != "admin" or not active)
        if losing_admin and _active_admins(s) <= 1:
            flash(_("%(email)s is the last active admin: add another admin first.", email=user.email), "error")
            return redirect(url_for("admin.users"))
        if user.id == current_user.id and not active:
            flash(_("You cannot switch yourself off."), "error")
            return redirect(url_for("admin.users"))
        if user.active and not active:
            sessions.end_all(s, user.id)  # switched off: signed out everywhere, even if switched on again
        user.role, user.active = role, active
        email = user.email
    flash(_("%(email)s updated.", email=email), "success")
    return redirect(url_for("admin.users"))


@bp.post("/tokens")
@roles(*ADMIN)
def token_create() -> Any:
    with db().scope() as s:
        users = list(s.scalars(select(User).order_by(User.id)))
    token_form = _token_form_class(users)
    data, errors = read_form(token_form, request.form, creating=True)
    plain = None
    if not errors:
        try:
            loaded = token_form().load(data)
            with db().scope() as s:
                user = s.get(User, loaded["user_id"])
                if user is None or not user.active:
                    raise ValidationError({"user_id": [str(_l("Choose an active user."))]})
                plain = create_api_token(s, email=user.email, name=loaded["name"], now=utcnow())
                email = user.email
        except ValidationError as exc:
            errors = flatten_errors(exc.messages)
    if plain is None:
        return _page(token_values=submitted_values(request.form), token_errors=errors, status=422)
    # The only response that ever carries the token: not cached, not shown again.
    response = current_app.make_response(render_template(
        "admin/token_created.html", token=plain, name=loaded["name"], email=email))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tokens/<int:token_id>/revoke")
@roles(*ADMIN)
def token_revoke(token_id: int) -> Any:
    with db().scope() as s:
        token = get_or_404(s, ApiToken, token_id)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        name = token.name
    flash(_("Token %(name)s revoked: it no longer works.", name=name), "success")
    return redirect(url_for("admin.users"))
