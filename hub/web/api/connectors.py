"""/api/v1/connectors: configure subscribers and test their connection."""
from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.base import UnknownConnectorKind, registry, secret_fields
from hub.crm.store import InvalidConnector, create_connector, update_connector
from hub.crm.check import run_check
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from hub.crm.settings_form import describe_settings
from hub.web.api.fields import Text
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("connectors", __name__, url_prefix="/connectors",
                description="Connectors: where hub events go (CRMs, webhooks).")
blp.before_request(authenticate)


class FieldOut(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    label = fields.String()
    help = fields.String()
    secret = fields.Boolean()
    placeholder = fields.String()
    choices = fields.List(fields.Raw(), allow_none=True)
    default = fields.Raw(allow_none=True)


class KindOut(Schema):
    kind = fields.String()
    title = fields.String()
    handles = fields.List(fields.String(), allow_none=True,
                          metadata={"description": "event types this kind acts on; null = all"})
    fields_ = fields.List(fields.Nested(FieldOut), data_key="fields")


class ConnectorOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()
    enabled = fields.Boolean()
    settings = fields.Dict(metadata={"description": "settings without secrets"})
    secrets_set = fields.List(fields.String(), metadata={"description": "secret fields that hold a value"})
    event_types = fields.List(fields.String(), allow_none=True)
    health = fields.String()
    health_message = fields.String()
    health_checked_at = fields.DateTime(allow_none=True)
    webhook_url = fields.String(metadata={"description": "inbound URL for this connector (admins only)"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _name(**kwargs) -> Text:
    return Text(200, min_length=1, **kwargs)  # connectors.name


def _event_types(**kwargs) -> fields.List:
    return fields.List(Text(64), allow_none=True, validate=validate.Length(max=100), **kwargs)


class ConnectorCreate(Schema):
    kind = Text(64, min_length=1, required=True)
    name = _name(required=True)
    enabled = fields.Boolean(load_default=True)
    settings = fields.Dict(required=True)
    event_types = _event_types(load_default=None)


class ConnectorPatch(Schema):
    name = _name()
    enabled = fields.Boolean()
    settings = fields.Dict(metadata={"description": "changed fields; a blank secret keeps the stored one"})
    event_types = _event_types()


class CheckOut(Schema):
    ok = fields.Boolean()
    message = fields.String()
    details = fields.Dict()


def _out(record: ConnectorRecord) -> dict[str, Any]:
    kind_cls = registry.find(record.kind)
    secret_names = secret_fields(kind_cls.Settings) if kind_cls else set()
    stored = set(current_runtime().vault.decrypt(record.secrets_enc)) if record.secrets_enc else set()
    out = {
        "id": record.id, "kind": record.kind, "name": record.name, "enabled": record.enabled,
        "settings": record.settings, "secrets_set": sorted(secret_names & stored),
        "event_types": record.event_types, "health": record.health,
        "health_message": record.health_message, "health_checked_at": record.health_checked_at,
        "created_at": record.created_at, "updated_at": record.updated_at,
    }
    if g.api_user["role"] == "admin":
        out["webhook_url"] = f"{current_runtime().config.base_url.rstrip('/')}/webhooks/connectors/{record.webhook_key}"
    return out


def _invalid(exc: InvalidConnector) -> None:
    errors = exc.errors
    settings_errors = {k: v for k, v in errors.items() if k not in ("name", "event_types")}
    body: dict[str, Any] = {k: v for k, v in errors.items() if k in ("name", "event_types")}
    if settings_errors:
        body["settings"] = settings_errors
    abort(422, message=f"invalid connector: {exc}", errors={"json": body})


@blp.route("/kinds")
class Kinds(MethodView):
    @blp.response(200, KindOut(many=True))
    def get(self):
        """Installed connector kinds and the fields of their settings forms."""
        return [
            {"kind": kind, "title": cls.title,
             "handles": sorted(cls.handles) if cls.handles is not None else None,
             "fields_": describe_settings(cls.Settings)}
            for kind, cls in registry.kinds().items()
        ]


@blp.route("")
class Connectors(MethodView):
    @blp.response(200, ConnectorOut(many=True))
    def get(self):
        """Configured connectors."""
        with db().scope() as session:
            return [_out(r) for r in session.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id))]

    @require_role("admin")
    @blp.arguments(ConnectorCreate)
    @blp.response(201, ConnectorOut)
    def post(self, body):
        """Add a connector; settings are validated by its kind's schema."""
        runtime = current_runtime()
        try:
            with runtime.db.scope() as session:
                record = create_connector(session, runtime.vault, now=utcnow(), **body)
                return _out(record)
        except UnknownConnectorKind as exc:
            abort(422, message=str(exc), errors={"json": {"kind": [str(exc)]}})
        except InvalidConnector as exc:
            _invalid(exc)


def _get(session: Any, connector_id: int) -> ConnectorRecord:
    return api_get_or_404(session, ConnectorRecord, connector_id, "connector")


@blp.route("/<id:connector_id>")
class ConnectorItem(MethodView):
    @blp.response(200, ConnectorOut)
    def get(self, connector_id: int):
        with db().scope() as session:
            return _out(_get(session, connector_id))

    @require_role("admin")
    @blp.arguments(ConnectorPatch)
    @blp.response(200, ConnectorOut)
    def patch(self, body, connector_id: int):
        """Change a connector; omitted fields keep their values."""
        runtime = current_runtime()
        try:
            with runtime.db.scope() as session:
                record = _get(session, connector_id)
                update_connector(
                    session, runtime.vault, record, now=utcnow(),
                    settings=body.get("settings"), name=body.get("name"), enabled=body.get("enabled"),
                    event_types=body["event_types"] if "event_types" in body else ...,
                )
                session.flush()
                return _out(record)
        except InvalidConnector as exc:
            _invalid(exc)
        except IntegrityError:  # the only unique column a change can touch
            name = str(body.get("name", "")).strip()
            _invalid(InvalidConnector({"name": [f"a connector named {name!r} already exists"]}))

    @require_role("admin")
    @blp.response(204)
    def delete(self, connector_id: int):
        """Remove a connector with its queue and links."""
        with db().scope() as session:
            session.delete(_get(session, connector_id))


@blp.route("/<id:connector_id>/check")
class ConnectorCheck(MethodView):
    @require_role("admin")
    @blp.response(200, CheckOut)
    def post(self, connector_id: int):
        """Test the connection now and record the connector's health."""
        runtime = current_runtime()
        with runtime.db.scope() as session:
            _get(session, connector_id)
        result = run_check(runtime, connector_id, now=utcnow())
        return {"ok": result.ok, "message": result.message, "details": result.details}
