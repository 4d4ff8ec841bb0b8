"""Who may use the admin: first-run setup, sign-in and out, sessions that expire, roles.

Sessions are kept on the server too (sessions.py): the cookie names a row, signing out
deletes it, and a cookie whose row is gone opens nothing.

Roles form a ladder: a viewer reads everything but users and tokens; an operator also
works the inbox; an admin does everything. A POST a role may not make answers 403.
Sign-in attempts are limited per address and e-mail, per address and per account
(signin_limits.py).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Callable
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import User
from hub.shared.security import check_password, hash_password
from hub.models.users import MIN_PASSWORD, InvalidUser, create_user
from hub.web.admin import bp, sessions, signin_limits
from hub.web.admin.forms import fields_for, flatten_errors, read_form, submitted_values
from hub.web.lookups import db

csrf = CSRFProtect()
login_manager = LoginManager()

# Views reachable without signing in (the login page itself, first-run setup).
PUBLIC = {"admin.login", "admin.setup", "admin.set_language"}
# A hash to compare against when the e-mail is unknown, so both cases take as long.
_DUMMY_HASH = hash_password("not a real password")


def password_stamp(password_hash: str) -> str:
    """A fingerprint of the password hash kept in the session cookie beside the session's
    id: the views that change a password end the user's sessions (sessions.end_all), and
    this ends them too however else the hash may change."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass
class AdminUser(UserMixin):
    id: int
    email: str
    name: str
    role: str
    stamp: str
    session_id: str = field(default="", repr=False)  # a credential: never in a log line

    @classmethod
    def of(cls, user: User, session_id: str = "") -> "AdminUser":
        return cls(user.id, user.email, user.name, user.role, password_stamp(user.password_hash), session_id)

    def get_id(self) -> str:
        return f"{self.stamp}.{self.session_id}"

    def can(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def display(self) -> str:
        return self.name or self.email


def _lifetime() -> timedelta:
    return current_app.permanent_session_lifetime


@login_manager.user_loader
def _load_user(cookie_id: str) -> AdminUser | None:
    stamp, _, session_id = cookie_id.partition(".")
    if not session_id:
        return None  # a cookie from before sessions were kept on the server
    with db().scope() as s:
        user = sessions.find(s, session_id, now=utcnow(), idle=_lifetime())
        if user is None:
            return None  # signed out, ended by a password change, or idle too long
        if not user.active:
            return None  # deactivated users are signed out at their next request
        if stamp != password_stamp(user.password_hash):
            return None  # the password changed since this session signed in
        return AdminUser.of(user, session_id)


def init(app: Flask) -> None:
    admin_config = app.extensions["hub"].config.admin
    lifetime = timedelta(minutes=admin_config.session_minutes)
    app.config.update(
        PERMANENT_SESSION_LIFETIME=lifetime,
        # Checked in the admin's before_request only: the REST API (bearer tokens) and
        # inbound webhooks (signatures) carry no session and need no CSRF token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=int(lifetime.total_seconds()),
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = None


def has_users() -> bool:
    app = current_app
    if app.extensions.get("hub.admin.has_users"):
        return True
    with db().scope() as s:
        found = s.scalar(select(User.id).limit(1)) is not None
    if found:
        app.extensions["hub.admin.has_users"] = True  # users are never all deleted
    return found


def _session_expired() -> bool:
    """Idle sessions end on the server too, not only when the browser drops the cookie."""
    now = int(utcnow().timestamp())
    seen = session.get("seen")
    limit = current_app.permanent_session_lifetime.total_seconds()
    session["seen"] = now
    return seen is not None and now - int(seen) > limit


@bp.before_request
def _guard() -> Any:
    if request.endpoint == "admin.static":
        return None
    if request.method == "POST":
        csrf.protect()
    if request.endpoint in PUBLIC:
        return None
    if not has_users():
        return redirect(url_for("admin.setup"))
    if current_user.is_authenticated and _session_expired():
        sign_out()
        flash(_("Your session expired. Please sign in again."), "info")
        return redirect(url_for("admin.login", next=request.full_path if request.method == "GET" else None))
    if not current_user.is_authenticated:
        return redirect(url_for("admin.login", next=request.full_path if request.method == "GET" else None))
    return None


def roles(*allowed: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Only these roles may use the view; others get 403."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


ADMIN = ("admin",)
OPERATORS = ("admin", "operator")


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> Any:
    return render_template("admin/error.html", code=400, title=_("The form expired"),
                           message=_("The page was open too long or came from elsewhere. "
                                     "Go back, reload it and try again.")), 400


@bp.errorhandler(403)
def _forbidden(exc: Any) -> Any:
    role = current_user.role if current_user.is_authenticated else "-"
    return render_template("admin/error.html", code=403, title=_("Not allowed"),
                           message=_("Your role (%(role)s) cannot do this. Ask an admin.", role=role)), 403


@bp.errorhandler(404)
def _not_found(exc: Any) -> Any:
    return render_template("admin/error.html", code=404, title=_("Not found"),
                           message=_("There is nothing here. It may have been removed.")), 404


def safe_next(target: str | None) -> str:
    """Only a path on this site: `next` must not send people elsewhere after sign-in."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("admin.dashboard")


# -- sign in / out --------------------------------------------------------------------------

class LoginForm(Schema):
    email = fields.String(required=True, metadata={"label": _l("E-mail"), "placeholder": "you@example.com"})
    password = fields.String(required=True, metadata={"label": _l("Password"), "secret": True})


def _authenticate(email: str, password: str) -> AdminUser | None:
    now = utcnow()
    with db().scope() as s:
        user = s.scalar(select(User).where(func.lower(User.email) == email))
        if user is None:
            check_password(_DUMMY_HASH, password)
            return None
        if not check_password(user.password_hash, password) or not user.active:
            return None
        user.last_login_at = now
        return AdminUser.of(user)


def sign_in(user: AdminUser, *, end_others: bool = False) -> None:
    """A new server-side session for this browser; `end_others` also ends every other
    session of the user (after a password change)."""
    now = utcnow()
    with db().scope() as s:
        if end_others:
            sessions.end_all(s, user.id)
        sessions.prune(s, now=now, idle=_lifetime())
        session_id = sessions.start(s, user.id, now=now)
    session.clear()  # a fresh session: nothing from before sign-in carries over
    session.permanent = True
    login_user(replace(user, session_id=session_id))
    session["seen"] = int(now.timestamp())


def sign_out() -> None:
    """Ends this browser's session on the server, so a saved copy of the cookie is useless."""
    if current_user.is_authenticated and current_user.session_id:
        with db().scope() as s:
            sessions.end(s, current_user.session_id)
    logout_user()
    session.clear()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if not has_users():
        return redirect(url_for("admin.setup"))
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        values = submitted_values(request.form)
        data, errors = read_form(LoginForm, request.form, creating=True)
        email = (data.get("email") or "").strip().lower()
        if not errors:
            attempt = signin_limits.begin(email)
            if attempt.wait > 0:
                seconds = int(attempt.wait) + 1
                errors = {"_schema": [_("Too many sign-in attempts. Try again in %(s)s seconds.", s=seconds)]}
                status, headers = 429, {"Retry-After": str(seconds)}
            else:
                user = _authenticate(email, data["password"])
                if user is not None:
                    attempt.succeeded()
                    sign_in(user)
                    response = redirect(safe_next(request.args.get("next")))
                    signin_limits.remember_browser(response, email)
                    return response
                errors = {"_schema": [_("Wrong e-mail or password.")]}
                status = 401
    return render_template("admin/login.html", fields=fields_for(LoginForm, values=values, errors=errors,
                                                                 submitted=bool(values)),
                           form_errors=errors.get("_schema", [])), status, headers


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("admin.login"))


# -- first run ----------------------------------------------------------------------------------

class SetupForm(Schema):
    name = fields.String(load_default="", validate=validate.Length(max=200), metadata={"label": _l("Your name")})
    email = fields.Email(required=True, metadata={"label": _l("E-mail"), "placeholder": "you@example.com"})
    password = fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD), metadata={
        "label": _l("Password"), "secret": True, "help": _l("At least %(n)s characters.", n=MIN_PASSWORD)})
    password_again = fields.String(required=True, metadata={"label": _l("Password again"), "secret": True})

    @validates_schema(skip_on_field_errors=False)
    def _same(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("password") != data.get("password_again"):
            raise ValidationError(str(_l("The two passwords differ.")), "password_again")


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """Creates the first admin; gone once any user exists."""
    if has_users():
        return redirect(url_for("admin.login"))
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = submitted_values(request.form)
        data, errors = read_form(SetupForm, request.form, creating=True)
        if not errors:
            try:
                loaded = SetupForm().load(data)
                with db().scope() as s:
                    if s.scalar(select(User.id).limit(1)) is not None:
                        return redirect(url_for("admin.login"))  # someone else finished setup first
                    user = create_user(s, email=loaded["email"], password=loaded["password"], role="admin",
                                       name=loaded["name"], now=utcnow())
                    admin = AdminUser.of(user)
            except ValidationError as exc:
                errors = flatten_errors(exc.messages)
            except InvalidUser as exc:
                errors = {"_schema": [str(exc)]}
            else:
                current_app.extensions["hub.admin.has_users"] = True
                sign_in(admin)
                flash(_("Welcome! Add a WhatsApp number and a connector to start."), "success")
                return redirect(url_for("admin.dashboard"))
    return render_template("admin/setup.html", fields=fields_for(SetupForm, values=values, errors=errors,
                                                                 submitted=bool(values)),
                           form_errors=errors.get("_schema", [])), (422 if errors else 200)
