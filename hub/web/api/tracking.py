"""/api/v1/tracked-links: tracked wa.me links, their visits, and the lead-source report."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from hub.events import payloads
from hub.platform.db import utcnow
from hub.models import Channel, TrackedLink, Visit
from hub.tracking.links import InvalidLink, LinkSettings, create_link, link_out, update_link
from hub.tracking.costs import GROUPS, cost_report
from hub.tracking.report import tracking_report
from hub.web.api.fields import Id, Int, Moment, Text
from hub.web.api.parsing import Blueprint
from hub.web.api.auth import authenticate, require_role
from hub.web.lookups import api_get_or_404, current_runtime, db

blp = Blueprint("tracked_links", __name__, url_prefix="/tracked-links",
                description="Tracked links: per-visit codes in wa.me links, and where leads came from.")
blp.before_request(authenticate)


class LinkOut(Schema):
    id = fields.Integer()
    slug = fields.String()
    channel_id = fields.Integer()
    campaign = fields.String()
    text_template = fields.String()
    utm_source = fields.String()
    utm_medium = fields.String()
    utm_campaign = fields.String()
    utm_content = fields.String()
    utm_term = fields.String()
    static_code = fields.String(allow_none=True)
    active = fields.Boolean()
    url = fields.String(metadata={"description": "the link to put in ads and on sites: <base_url>/l/<slug>"})
    script_tag = fields.String(metadata={"description": "for a site: rewrites its wa.me links to this link"})
    wa_me_url = fields.String(allow_none=True, metadata={
        "description": "static links only: the direct wa.me link with the fixed code, for QR codes and print"})
    created_at = fields.String()
    updated_at = fields.String()


class LinkIn(LinkSettings):
    """The link form, with the channel id and the raw static code bounded before the
    form's own checks run (folding a megabyte of look-alikes takes seconds)."""

    channel_id = Id(Channel, required=True, metadata={"label": "WhatsApp number"})
    static_code = Text(64, load_default=None, allow_none=True,
                       metadata=LinkSettings._declared_fields["static_code"].metadata)


class LinkPatch(LinkIn):
    """Only the fields to change."""


CAMPAIGN_MAX = 200  # tracked_links.campaign


class LinkQuery(Schema):
    campaign = Text(CAMPAIGN_MAX, metadata={"description": "only links of this campaign"})


class VisitOut(Schema):
    id = fields.Integer()
    code = fields.String()
    visited_at = fields.String()
    matched_at = fields.String(allow_none=True)
    utm_source = fields.String(allow_none=True)
    utm_medium = fields.String(allow_none=True)
    utm_campaign = fields.String(allow_none=True)
    utm_content = fields.String(allow_none=True)
    utm_term = fields.String(allow_none=True)
    gclid = fields.String(allow_none=True)
    yclid = fields.String(allow_none=True)
    fbclid = fields.String(allow_none=True)
    ga_client_id = fields.String(allow_none=True)
    ym_uid = fields.String(allow_none=True)
    roistat_visit = fields.String(allow_none=True)
    referrer = fields.String(allow_none=True)
    landing_page = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    ip_hash = fields.String(allow_none=True, metadata={"description": "salted HMAC of the address"})


class VisitQuery(Schema):
    limit = Int(1, 1000, load_default=100)
    before_id = Id(Visit, metadata={"description": "page back: visits older than this id"})


class ReportQuery(Schema):
    since = Moment(metadata={"description": "ISO 8601 with a zone; inclusive"})
    until = Moment(metadata={"description": "ISO 8601 with a zone; exclusive"})
    campaign = Text(CAMPAIGN_MAX)

    @validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError({"until": ["must be after since"]})


class ReportRow(Schema):
    visits = fields.Integer()
    conversations = fields.Integer(metadata={"description": "conversations started through the link"})
    conversion_rate = fields.Float(allow_none=True, metadata={"description": "conversations / visits"})


class LinkReportRow(ReportRow):
    link_id = fields.Integer()
    slug = fields.String()
    campaign = fields.String()
    static = fields.Boolean()


class CampaignReportRow(ReportRow):
    campaign = fields.String()
    links = fields.Integer()


class ReportOut(Schema):
    since = fields.String(allow_none=True)
    until = fields.String(allow_none=True)
    links = fields.List(fields.Nested(LinkReportRow))
    campaigns = fields.List(fields.Nested(CampaignReportRow))
    total = fields.Nested(ReportRow)


class CostQuery(Schema):
    group_by = fields.String(load_default="lead_source", validate=validate.OneOf(GROUPS),
                             metadata={"description": "conversation, deal, lead_source (the UTM source, else the "
                                                      "kind), utm_campaign or broadcast (the conversations its "
                                                      "messages went to; only those messages' cost)"})
    since = Moment(metadata={"description": "conversations opened at or after (ISO 8601 with a zone)"})
    until = Moment(metadata={"description": "conversations opened before (ISO 8601 with a zone)"})

    @validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError({"until": ["must be after since"]})


class CostRow(Schema):
    key = fields.String(metadata={"description": "the conversation id, crm connector:deal id, source or campaign"})
    leads = fields.Integer(metadata={"description": "conversations"})
    deals = fields.Integer()
    won_deals = fields.Integer()
    revenue = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "won deals' amounts per currency"})
    cost = fields.Dict(keys=fields.String(), values=fields.String(),
                       metadata={"description": "what WhatsApp billed for the conversations' messages, per currency"})
    cost_per_lead = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    cost_per_won_deal = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    romi = fields.Float(allow_none=True, metadata={"description": "(revenue - cost) / cost; null unless both are "
                                                                  "in one currency"})


class CostOut(Schema):
    since = fields.String(allow_none=True)
    until = fields.String(allow_none=True)
    group_by = fields.String()
    rows = fields.List(fields.Nested(CostRow))
    total = fields.Nested(CostRow, allow_none=True)


def _base_url() -> str:
    return current_runtime().config.base_url


def _get(session: Any, link_id: int) -> TrackedLink:
    return api_get_or_404(session, TrackedLink, link_id, "tracked link")


def _invalid(exc: InvalidLink) -> None:
    abort(exc.status, message=f"invalid tracked link: {exc}", errors={"json": exc.errors})


@blp.route("")
class Links(MethodView):
    @blp.arguments(LinkQuery, location="query")
    @blp.response(200, LinkOut(many=True))
    def get(self, query: dict[str, Any]):
        """Tracked links, by campaign and slug."""
        with db().scope() as session:
            select_links = select(TrackedLink).order_by(TrackedLink.campaign, TrackedLink.slug)
            if "campaign" in query:
                select_links = select_links.where(TrackedLink.campaign == query["campaign"])
            return [link_out(session, link, _base_url()) for link in session.scalars(select_links)]

    @require_role("admin")
    @blp.arguments(LinkIn)
    @blp.response(201, LinkOut)
    def post(self, body: dict[str, Any]):
        """Add a link; its URL is <base_url>/l/<slug>."""
        try:
            with db().scope() as session:
                return link_out(session, create_link(session, body, now=utcnow()), _base_url())
        except InvalidLink as exc:
            _invalid(exc)


@blp.route("/<id:link_id>")
class LinkItem(MethodView):
    @blp.response(200, LinkOut)
    def get(self, link_id: int):
        with db().scope() as session:
            return link_out(session, _get(session, link_id), _base_url())

    @require_role("admin")
    @blp.arguments(LinkPatch(partial=True))
    @blp.response(200, LinkOut)
    def patch(self, body: dict[str, Any], link_id: int):
        """Change a link; visits already made keep their codes."""
        try:
            with db().scope() as session:
                return link_out(session, update_link(session, _get(session, link_id), body, now=utcnow()),
                                _base_url())
        except InvalidLink as exc:
            _invalid(exc)

    @require_role("admin")
    @blp.response(204)
    def delete(self, link_id: int):
        """Delete a link and its visits; conversations keep the lead source they got."""
        with db().scope() as session:
            session.delete(_get(session, link_id))


@blp.route("/<id:link_id>/visits")
class LinkVisits(MethodView):
    @blp.arguments(VisitQuery, location="query")
    @blp.response(200, VisitOut(many=True))
    def get(self, query: dict[str, Any], link_id: int):
        """The link's visits, newest first."""
        with db().scope() as session:
            _get(session, link_id)
            visits = select(Visit).where(Visit.link_id == link_id).order_by(Visit.id.desc()).limit(query["limit"])
            if "before_id" in query:
                visits = visits.where(Visit.id < query["before_id"])
            return [{**{c: getattr(v, c) for c in VisitOut().fields if c not in ("visited_at", "matched_at")},
                     "visited_at": payloads.iso(v.visited_at), "matched_at": payloads.iso(v.matched_at)}
                    for v in session.scalars(visits)]


@blp.route("/report")
class Report(MethodView):
    @blp.arguments(ReportQuery, location="query")
    @blp.response(200, ReportOut)
    def get(self, query: dict[str, Any]):
        """Visits, conversations started and conversion rate per link and per campaign."""
        with db().scope() as session:
            return tracking_report(session, since=query.get("since"), until=query.get("until"),
                                   campaign=query.get("campaign"))


@blp.route("/costs")
class Costs(MethodView):
    @blp.arguments(CostQuery, location="query")
    @blp.response(200, CostOut)
    def get(self, query: dict[str, Any]):
        """WhatsApp cost beside revenue per conversation, deal, lead source or UTM campaign:
        cost per lead, cost per won deal, ROMI (docs/conversions.md)."""
        with db().scope() as session:
            return cost_report(session, group_by=query["group_by"], since=query.get("since"),
                               until=query.get("until"))


@blp.route("/<id:link_id>/report")
class LinkReport(MethodView):
    @blp.arguments(ReportQuery, location="query")
    @blp.response(200, ReportOut)
    def get(self, query: dict[str, Any], link_id: int):
        """The report for one link."""
        with db().scope() as session:
            _get(session, link_id)
            return tracking_report(session, since=query.get("since"), until=query.get("until"), link_id=link_id)
