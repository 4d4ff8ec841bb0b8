"""Message templates synced from each WhatsApp Business Account: status, category and
quality at a glance, and a preview with variables filled in."""
from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from sqlalchemy import select

from hub.models import Channel, Template
from hub.web.admin import bp, template_form
from hub.web.lookups import db, detached_or_404

STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "DELETED")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


@bp.get("/templates")
def templates() -> Any:
    args = request.args
    with db().scope() as s:
        channels = list(s.scalars(select(Channel).order_by(Channel.id)))
        query = select(Template).order_by(Template.name, Template.language)
        channel_id = int(args["channel_id"]) if args.get("channel_id", "").isdigit() else None
        if channel_id:
            channel = next((c for c in channels if c.id == channel_id), None)
            if channel is None:
                abort(404)
            query = query.where(Template.waba_id == (channel.waba_id or channel.phone_number_id))
        if args.get("status") in STATUSES:
            query = query.where(Template.status == args["status"])
        if args.get("category") in CATEGORIES:
            query = query.where(Template.category == args["category"])
        if args.get("name", "").strip():
            query = query.where(Template.name.contains(args["name"].strip().lower()))
        rows = list(s.scalars(query.limit(500)))
    accounts = {}
    for c in channels:
        accounts.setdefault(c.waba_id or c.phone_number_id, []).append(c.name)
    return render_template("admin/templates.html", rows=rows, channels=channels, channel_id=channel_id,
                           statuses=STATUSES, categories=CATEGORIES, args=args, accounts=accounts)


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
def template(template_id: int) -> Any:
    """POST only previews (nothing is saved or sent), so every role may use it."""
    t = detached_or_404(Template, template_id)
    values = {k: v for k, v in request.form.items() if k != "csrf_token"} if request.method == "POST" else None
    rendered, problem = template_form.preview(t, values)
    if request.headers.get("HX-Request") and request.method == "POST":
        return render_template("admin/_template_preview.html", rendered=rendered, problem=problem)
    return render_template("admin/template.html", t=t, variables=template_form.variables(t), values=values or {},
                           rendered=rendered, problem=problem)
