"""/api/v1/templates: synced message templates, filters, preview, sync on demand."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, validate
from sqlalchemy import select

from hub.channels.whatsapp.templates import parameters as tpl
from hub.channels.whatsapp.errors import WhatsAppError
from hub.channels.whatsapp.templates.sync import sync_channel
from hub.platform.db import utcnow
from hub.models import Channel, Template
from hub.web.api.fields import Id, Text
from hub.web.api.messages import TemplateValues
from hub.web.api.schemas import PreviewOut, SyncOut, TemplateOut
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("templates", __name__, url_prefix="/templates", description="WhatsApp message templates.")
blp.before_request(authenticate)


class TemplateQuery(Schema):
    channel_id = Id(Channel)
    status = Text(32)
    category = Text(32, validate=validate.OneOf(["MARKETING", "UTILITY", "AUTHENTICATION"]))
    name = Text(512, metadata={"description": "substring"})
    language = Text(16)


class PreviewIn(TemplateValues):
    """The variables to render the template with."""


class SyncIn(Schema):
    channel_id = Id(Channel, required=True)


def template_out(t: Template) -> dict[str, Any]:
    return {"id": t.id, "waba_id": t.waba_id, "wa_template_id": t.wa_template_id, "name": t.name,
            "language": t.language, "status": t.status, "category": t.category, "quality_score": t.quality_score,
            "parameter_format": t.parameter_format, "components": t.components, "status_reason": t.status_reason,
            "synced_at": t.synced_at.isoformat() if t.synced_at else None,
            "preview": tpl.render(t)}


@blp.route("")
class Templates(MethodView):
    @blp.arguments(TemplateQuery, location="query")
    @blp.response(200, TemplateOut(many=True))
    def get(self, args: dict[str, Any]):
        query = select(Template).order_by(Template.name, Template.language)
        with db().scope() as session:
            if args.get("channel_id"):
                channel = api_get_or_404(session, Channel, args["channel_id"], "channel")
                query = query.where(Template.waba_id == (channel.waba_id or channel.phone_number_id))
            if args.get("status"):
                query = query.where(Template.status == args["status"].upper())
            if args.get("category"):
                query = query.where(Template.category == args["category"])
            if args.get("language"):
                query = query.where(Template.language == args["language"])
            if args.get("name"):
                query = query.where(Template.name.contains(args["name"].lower()))
            return [template_out(t) for t in session.scalars(query)]


@blp.route("/<id:template_id>/preview")
class Preview(MethodView):
    @blp.arguments(PreviewIn)
    @blp.response(200, PreviewOut)
    def post(self, body: dict[str, Any], template_id: int):
        """Render with variables; 422 says what does not fit the template."""
        with db().scope() as session:
            t = api_get_or_404(session, Template, template_id, "template")
            try:
                built = tpl.build(t, tpl.TemplateInput(t.name, t.language, body.get("body"), body.get("header"),
                                                       body.get("buttons")))
            except tpl.TemplateProblem as exc:
                abort(422, message=str(exc))
            preview = tpl.render(t, built)
            return {"preview": preview, "text": tpl.as_text(preview), "request": built}


@blp.route("/sync")
class Sync(MethodView):
    @require_role("admin")
    @blp.arguments(SyncIn)
    @blp.response(200, SyncOut)
    def post(self, body: dict[str, Any]):
        """Fetch the account's templates now."""
        try:
            return sync_channel(current_runtime(), body["channel_id"], now=utcnow())
        except LookupError as exc:
            abort(404, message=str(exc))
        except WhatsAppError as exc:
            abort(502, message=f"WhatsApp refused the template sync: {exc}")
