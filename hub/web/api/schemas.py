"""Response schemas of the WhatsApp-facing API (they document /api/v1/openapi.json)."""
from __future__ import annotations

from marshmallow import Schema, fields


class UserRef(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()


class MessageOut(Schema):
    id = fields.Integer()
    conversation_id = fields.Integer()
    wa_message_id = fields.String(allow_none=True)
    direction = fields.String(metadata={"description": "in | out"})
    type = fields.String()
    text = fields.String(allow_none=True)
    timestamp = fields.String()
    status = fields.String(metadata={"description": "received | queued | sending | accepted | sent | delivered | "
                                                    "read | played | failed"})
    media = fields.Dict(allow_none=True)
    reply_to = fields.String(allow_none=True)
    template = fields.Dict(allow_none=True)
    author = fields.Nested(UserRef, allow_none=True)
    error = fields.Dict(allow_none=True)
    attempts = fields.Integer()
    accepted_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    read_at = fields.String(allow_none=True)
    failed_at = fields.String(allow_none=True)
    pricing = fields.Dict(allow_none=True, metadata={"description": "billable, category, type, cost, currency"})


class ConversationOut(Schema):
    id = fields.Integer()
    status = fields.String()
    opened_at = fields.String()
    closed_at = fields.String(allow_none=True)
    channel = fields.Dict()
    assignee = fields.Nested(UserRef, allow_none=True)
    lead_source = fields.Dict(allow_none=True)
    contact_id = fields.Integer()
    team_id = fields.Integer(allow_none=True, metadata={"description": "the team routing gave it to"})
    last_inbound_at = fields.String(allow_none=True)
    last_message_at = fields.String(allow_none=True)
    window_open = fields.Boolean()
    window_closes_at = fields.String(allow_none=True)
    free_entry_point_until = fields.String(allow_none=True)
    messages = fields.List(fields.Nested(MessageOut))


class ChannelOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String(metadata={"description": "whatsapp, telegram or instagram"})
    provider = fields.String()
    phone_number_id = fields.String()
    waba_id = fields.String()
    display_number = fields.String()
    mps = fields.Integer()
    api_base_url = fields.String()
    quality_rating = fields.String(allow_none=True)
    messaging_limit = fields.String(allow_none=True)
    throughput_level = fields.String(allow_none=True)
    health = fields.String()
    health_message = fields.String()
    last_webhook_at = fields.String(allow_none=True)
    templates_synced_at = fields.String(allow_none=True)
    secrets_set = fields.List(fields.String())
    webhook_url = fields.String(metadata={"description": "admins only: paste into Meta's dashboard"})
    verify_token = fields.String(metadata={"description": "admins only"})
    webhook_header = fields.Dict(metadata={"description": "admins only, 360dialog: header to register"})


class TemplateOut(Schema):
    id = fields.Integer()
    waba_id = fields.String()
    wa_template_id = fields.String(allow_none=True)
    name = fields.String()
    language = fields.String()
    status = fields.String()
    category = fields.String(allow_none=True)
    quality_score = fields.String(allow_none=True)
    parameter_format = fields.String()
    components = fields.List(fields.Dict())
    status_reason = fields.String(allow_none=True)
    synced_at = fields.String(allow_none=True)
    preview = fields.Dict()


class PreviewOut(Schema):
    preview = fields.Dict()
    text = fields.String()
    request = fields.Dict(metadata={"description": "the template object that would be sent"})


class SyncOut(Schema):
    templates = fields.Integer()
    marked_deleted = fields.Integer()
