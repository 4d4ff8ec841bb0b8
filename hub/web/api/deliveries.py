"""/api/v1/deliveries: the delivery log, dead letters and replay."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate, validates_schema, ValidationError

from hub.platform.db import utcnow
from hub.delivery import ledger, queries
from hub.models import ConnectorRecord, Delivery
from hub.models.events import DELIVERY_STATUSES
from hub.web.api.fields import Id, Int
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.lookups import db

blp = Blueprint("deliveries", __name__, url_prefix="/deliveries",
                description="Deliveries of events to connectors: status, attempts, dead letters.")
blp.before_request(authenticate)


class DeliveryOut(Schema):
    id = fields.Integer()
    event_id = fields.String()
    event_type = fields.String()
    connector_id = fields.Integer()
    connector = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    created_at = fields.DateTime()
    last_attempt_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class DeliveryDetail(DeliveryOut):
    ordering_key = fields.String(allow_none=True)
    lease_owner = fields.String(allow_none=True)
    lease_expires_at = fields.DateTime(allow_none=True)
    last_response = fields.Dict(allow_none=True)
    event = fields.Dict()


class DeliveryQuery(Schema):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    connector_id = Id(ConnectorRecord)
    before_id = Id(Delivery, metadata={"description": "page: ids below this one"})
    limit = Int(1, 500, load_default=50)


class ReplayIn(Schema):
    ids = fields.List(Id(Delivery), validate=validate.Length(max=10_000),
                      metadata={"description": "dead deliveries to replay"})
    connector_id = Id(ConnectorRecord, metadata={"description": "replay every dead letter of this connector"})
    all = fields.Boolean(load_default=False, metadata={"description": "replay every dead letter"})

    @validates_schema
    def _one_target(self, data, **_):
        if not data.get("ids") and not data.get("connector_id") and not data.get("all"):
            raise ValidationError("give ids, connector_id or all=true", "_schema")


class ReplayOut(Schema):
    replayed = fields.Integer()


class CountsOut(Schema):
    pending = fields.Integer()
    leased = fields.Integer()
    done = fields.Integer()
    dead = fields.Integer()
    oldest_waiting_at = fields.DateTime(allow_none=True)


@blp.route("")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryOut(many=True))
    def get(self, args):
        """Newest first; page with before_id."""
        with db().scope() as session:
            return queries.list_deliveries(session, **args)


@blp.route("/counts")
class Counts(MethodView):
    @blp.arguments(Schema.from_dict({"connector_id": Id(ConnectorRecord)}, name="CountsQuery")(), location="query")
    @blp.response(200, CountsOut)
    def get(self, args):
        """Deliveries by status and the age of the oldest still waiting."""
        with db().scope() as session:
            return {**queries.counts(session, **args),
                    "oldest_waiting_at": queries.oldest_waiting(session, **args)}


@blp.route("/<bigid:delivery_id>")
class DeliveryItem(MethodView):
    @blp.response(200, DeliveryDetail)
    def get(self, delivery_id: int):
        """One delivery with its event, last response and error."""
        with db().scope() as session:
            found = queries.show_delivery(session, delivery_id)
        if found is None:
            abort(404, message=f"no delivery with id {delivery_id}")
        return found


@blp.route("/replay")
class Replay(MethodView):
    @require_role("admin")
    @blp.arguments(ReplayIn)
    @blp.response(200, ReplayOut)
    def post(self, body):
        """Put dead letters back in the queue."""
        with db().scope() as session:
            count = ledger.replay(
                session, now=utcnow(), ids=body.get("ids") or None,
                connector_id=body.get("connector_id"),
            )
        return {"replayed": count}
