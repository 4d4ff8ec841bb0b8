"""Tracked links: the form (API and admin), validation, and what a link looks like out."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.tracking.attribution import UTM_FIELDS
from hub.models import Channel, TrackedLink
from hub.tracking.codes import normalise_static_code, static_code_problem
from hub.tracking.visits import chat_url, number_digits, prefilled_text

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
TEXT_MAX = 1000  # the prefilled text travels in a URL


def _utm(label: str) -> fields.String:
    return fields.String(load_default="", validate=validate.Length(max=255),
                         metadata={"label": label, "help": "Used when the visit's URL has none."})


class LinkSettings(Schema):
    slug = fields.String(required=True, validate=validate.Regexp(
        SLUG, error="lower-case letters, digits and inner hyphens, 1 to 64 characters"),
        metadata={"label": "Slug", "placeholder": "spring-sale", "help": "The link is <base_url>/l/<slug>."})
    channel_id = fields.Integer(required=True, metadata={"label": "WhatsApp number"})
    campaign = fields.String(load_default="", validate=validate.Length(max=200),
                             metadata={"label": "Campaign", "placeholder": "Spring sale"})
    text_template = fields.String(required=True, validate=validate.Length(1, TEXT_MAX), metadata={
        "label": "Prefilled text", "placeholder": "Hello! My request number: {code}",
        "help": "The first message the customer sends; {code} becomes the visit's code."})
    utm_source = _utm("Default utm_source")
    utm_medium = _utm("Default utm_medium")
    utm_campaign = _utm("Default utm_campaign")
    utm_content = _utm("Default utm_content")
    utm_term = _utm("Default utm_term")
    static_code = fields.String(load_default=None, allow_none=True, metadata={
        "label": "Static code", "placeholder": "QR24",
        "help": "For QR codes and print: one fixed code instead of one per visit (4-16 letters and digits)."})
    active = fields.Boolean(load_default=True, metadata={"label": "Active"})

    @validates("text_template")
    def _has_code(self, value: str, **_: Any) -> None:
        if value.count("{code}") != 1:
            raise ValidationError("must contain {code} exactly once")

    @validates("static_code")
    def _static(self, value: str | None, **_: Any) -> None:
        if value is None or value == "":
            return
        try:
            problem = static_code_problem(normalise_static_code(value))
        except ValueError as exc:
            problem = str(exc)
        if problem:
            raise ValidationError(problem)


class InvalidLink(ValueError):
    def __init__(self, errors: Mapping[str, Any], status: int = 422):
        self.errors = dict(errors)
        self.status = status
        super().__init__("; ".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}"
                                   for k, v in self.errors.items()))


def _load(data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    try:
        loaded = LinkSettings(partial=partial).load(dict(data))
    except ValidationError as exc:
        raise InvalidLink(exc.messages) from None
    if not partial or "static_code" in data:
        code = loaded.get("static_code")
        loaded["static_code"] = normalise_static_code(code) if code else None
    return loaded


def _check(session: Session, values: Mapping[str, Any], link_id: int | None) -> None:
    if "channel_id" in values:
        channel = session.get(Channel, values["channel_id"])
        if channel is None:
            raise InvalidLink({"channel_id": [f"no channel with id {values['channel_id']}"]})
        if len(number_digits(channel)) < 7 and not (channel.kind == "telegram" and chat_url(channel.display_number)):
            raise InvalidLink({"channel_id": ["this channel has no display number; set it first "
                                              "(wa.me links need the number)"]})
    for name in ("slug", "static_code"):
        value = values.get(name)
        if value and session.scalar(select(TrackedLink.id).where(
                getattr(TrackedLink, name) == value, TrackedLink.id != (link_id or 0))) is not None:
            raise InvalidLink({name: [f"another link already uses {value!r}"]}, status=409)


def _save(session: Session, link: TrackedLink) -> TrackedLink:
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
    except IntegrityError:
        raise InvalidLink({"slug": ["another link took this slug or static code just now"]}, status=409) from None
    return link


def create_link(session: Session, data: Mapping[str, Any], *, now: datetime) -> TrackedLink:
    values = _load(data, partial=False)
    _check(session, values, None)
    return _save(session, TrackedLink(**values, created_at=now, updated_at=now))


def update_link(session: Session, link: TrackedLink, data: Mapping[str, Any], *, now: datetime) -> TrackedLink:
    values = _load(data, partial=True)
    _check(session, values, link.id)
    for name, value in values.items():
        setattr(link, name, value)
    link.updated_at = now
    return _save(session, link)


def link_out(session: Session, link: TrackedLink, base_url: str) -> dict[str, Any]:
    """The link as the API shows it, with the URLs to hand out."""
    channel = session.get(Channel, link.channel_id)
    out = {name: getattr(link, name) for name in (
        "id", "slug", "channel_id", "campaign", "text_template", *UTM_FIELDS, "static_code", "active")}
    out["url"] = f"{base_url.rstrip('/')}/l/{link.slug}"
    out["script_tag"] = f'<script src="{base_url.rstrip("/")}/t.js" data-link="{link.slug}" async></script>'
    # The chat link for print (wa.me, or t.me/<bot>?start=<code>).
    out["wa_me_url"] = chat_url(channel.display_number, prefilled_text(link.text_template, link.static_code),
                                link.static_code) if link.static_code else None
    out["created_at"] = payloads.iso(link.created_at)
    out["updated_at"] = payloads.iso(link.updated_at)
    return out
