"""/ leads to the admin, or to first-run setup while the hub has no user yet."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    from hub.web.admin.auth import has_users

    return redirect(url_for("admin.dashboard") if has_users() else url_for("admin.setup"))
