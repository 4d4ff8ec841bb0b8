"""Each user changes their own password; an admin sets a new one for someone who lost
theirs. A changed password ends the user's other sessions on the server (sessions.py)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.models import User
from hub.shared.security import check_password, hash_password
from hub.models.users import MIN_PASSWORD
from hub.web.admin import bp, sessions
from hub.web.admin.auth import ADMIN, AdminUser, roles, sign_in
from hub.web.admin.forms import fields_for, load_form, submitted_values
from hub.web.lookups import db, detached_or_404


def _new_password(label: Any) -> Any:
    return fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD), metadata={
        "label": label, "secret": True, "help": _l("At least %(n)s characters.", n=MIN_PASSWORD)})


class _Twice(Schema):
    @validates_schema(skip_on_field_errors=False)
    def _same(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("new_password") != data.get("new_password_again"):
            raise ValidationError(str(_l("The two passwords differ.")), "new_password_again")


class ChangePassword(_Twice):
    current_password = fields.String(required=True, metadata={"label": _l("Current password"), "secret": True})
    new_password = _new_password(_l("New password"))
    new_password_again = fields.String(required=True, metadata={"label": _l("New password again"), "secret": True})


class NewPassword(_Twice):
    new_password = _new_password(_l("New password"))
    new_password_again = fields.String(required=True, metadata={"label": _l("New password again"), "secret": True})


def _form(schema: type[Schema], *, target: User | None = None, values=None, errors=None, status=200) -> Any:
    return render_template("admin/password.html", target=target, fields=fields_for(
        schema, values=values, errors=errors, submitted=bool(values)),
        form_errors=(errors or {}).get("_schema", [])), status


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    """Any signed-in user, for their own account: the current password proves it is them."""
    if request.method == "GET":
        return _form(ChangePassword)
    loaded, errors = load_form(ChangePassword, request.form)
    if not errors:
        with db().scope() as s:
            user = s.get(User, current_user.id)
            if not check_password(user.password_hash, loaded["current_password"]):
                errors = {"current_password": [_("This is not your current password.")]}
            else:
                user.password_hash = hash_password(loaded["new_password"])
                me = AdminUser.of(user)
    if errors:
        return _form(ChangePassword, values=submitted_values(request.form), errors=errors, status=422)
    sign_in(me, end_others=True)  # this browser stays signed in under the new password; the others end
    flash(_("Password changed. Your other sessions are signed out."), "success")
    return redirect(url_for("admin.dashboard"))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@roles(*ADMIN)
def user_password(user_id: int) -> Any:
    """An admin sets a new password for someone else (who then gets it from the admin)."""
    target = detached_or_404(User, user_id)
    if target.id == current_user.id:
        return redirect(url_for("admin.password"))
    if request.method == "GET":
        return _form(NewPassword, target=target)
    loaded, errors = load_form(NewPassword, request.form)
    if errors:
        return _form(NewPassword, target=target, values=submitted_values(request.form), errors=errors, status=422)
    with db().scope() as s:
        user = s.get(User, user_id)
        user.password_hash = hash_password(loaded["new_password"])
        sessions.end_all(s, user_id)
    flash(_("New password set for %(email)s; their sessions are signed out.", email=target.email), "success")
    return redirect(url_for("admin.users"))

