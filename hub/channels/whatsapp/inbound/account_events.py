"""Template, number-quality, account and user-preference webhooks."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels import customer_words
from hub.channels.whatsapp.inbound.body_channels import Channels
from hub.channels.whatsapp.inbound.types import NumberEvent, TemplateEvent, UserPreference, ValueErrors
from hub.conversations.store import find_contact
from hub.events.outbox import emit
from hub.models import Channel, Template

log = logging.getLogger(__name__)
# The historical FLAGGED / UNFLAGGED events carry no rating: FLAGGED is Meta's "quality
# dropped to low" (RED); UNFLAGGED says only that it left low, taken as medium (YELLOW).
FLAG_RATINGS = {"FLAGGED": "RED", "UNFLAGGED": "YELLOW"}


def _template(session: Session, waba_id: str, name: str, language: str, now: datetime) -> Template:
    template = session.scalar(select(Template).where(
        Template.waba_id == waba_id, Template.name == name, Template.language == language))
    if template is None:
        template = Template(waba_id=waba_id, name=name, language=language, status="PENDING",
                            components=[], created_at=now, updated_at=now)
        session.add(template)
    return template


def template_event(session: Session, channels: Channels, e: TemplateEvent, now: datetime) -> None:
    template = _template(session, e.route.waba_id, e.name, e.language, now)
    if e.template_id:
        template.wa_template_id = e.template_id
    template.updated_at = now
    if e.field == "message_template_status_update" and e.event:
        if e.time and template.last_event_at and e.time < template.last_event_at:
            return  # an older status arriving late never overwrites a newer one
        changed = template.status != e.event
        template.status = e.event
        template.status_reason = e.detail or (e.reason if e.reason not in (None, "NONE") else None)
        template.last_event_at = e.time or now
        if e.category:
            template.category = e.category
        if changed:
            for channel in channels.of_account(e.route.waba_id)[:1]:
                emit(session, "template.status_changed", {
                    "channel": payloads.channel(channel),
                    "template": {"name": template.name, "language": template.language,
                                 "id": template.wa_template_id, "status": template.status,
                                 "category": template.category, "reason": template.status_reason},
                }, now=now)
    elif e.field == "message_template_quality_update":
        template.quality_score = e.quality_score
    elif e.field == "template_category_update":
        if e.effective_at is None and e.category:
            template.category = e.category  # a notice only announces; the change comes later
    elif e.field == "message_template_components_update" and e.components:
        template.components = _merge_components(template.components or [], e)


def _merge_components(components: list[dict], e: TemplateEvent) -> list[dict]:
    by_type = {c.get("type", "").upper(): dict(c) for c in components}
    if e.components.body is not None:
        by_type.setdefault("BODY", {"type": "BODY"})["text"] = e.components.body
    if e.components.header is not None:
        by_type.setdefault("HEADER", {"type": "HEADER", "format": "TEXT"})["text"] = e.components.header
    if e.components.footer is not None:
        by_type.setdefault("FOOTER", {"type": "FOOTER"})["text"] = e.components.footer
    if e.components.buttons:
        by_type["BUTTONS"] = {"type": "BUTTONS", "buttons": list(e.components.buttons)}
    order = ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    return [by_type[t] for t in order if t in by_type] + [c for t, c in by_type.items() if t not in order]


def _number_channels(session: Session, channels: Channels, e: NumberEvent) -> list[Channel]:
    candidates = channels.of_account(e.route.waba_id)
    if e.route.phone_number_id:
        return [c for c in candidates if c.phone_number_id == e.route.phone_number_id]
    if e.route.display_phone_number and e.field != "business_capability_update":
        digits = "".join(ch for ch in e.route.display_phone_number if ch.isdigit())
        return [c for c in candidates if "".join(ch for ch in c.display_number if ch.isdigit()) == digits]
    return candidates  # account-wide (messaging limits are per business portfolio)


def number_event(session: Session, channels: Channels, e: NumberEvent, now: datetime) -> None:
    for channel in _number_channels(session, channels, e):
        before = (channel.quality_rating, channel.messaging_limit, channel.throughput_level)
        if e.quality_rating:
            channel.quality_rating = e.quality_rating
        elif e.field == "phone_number_quality_update" and e.event in FLAG_RATINGS:
            channel.quality_rating = FLAG_RATINGS[e.event]
        if e.messaging_limit:
            channel.messaging_limit = e.messaging_limit
        if e.throughput_level:
            channel.throughput_level = e.throughput_level
        if e.field == "account_update" and e.event:
            channel.health_message = f"account update: {e.event}"
        channel.updated_at = now
        if (channel.quality_rating, channel.messaging_limit, channel.throughput_level) != before:
            emit(session, "channel.quality_changed", {
                "channel": payloads.channel(channel), "quality_rating": channel.quality_rating,
                "messaging_limit": channel.messaging_limit, "event": e.event,
            }, now=now)


def user_preference(session: Session, p: UserPreference, now: datetime) -> None:
    """Recorded as the contact's marketing consent (hub.channels.customer_words), source whatsapp_preference."""
    contact = find_contact(session, wa_id=p.wa_id, user_id=p.user_id)
    if contact is None or p.category != "marketing_messages":
        return
    reason = p.detail or ("user stopped marketing messages" if p.value == "stop" else "user resumed marketing")
    changed = customer_words.marketing_preference(session, contact, p.value, detail=reason, at=p.timestamp or now, now=now)
    if changed and p.value == "stop":
        emit(session, "contact.opted_out", {"contact": payloads.contact(contact), "reason": reason,
                                            "source": "whatsapp_preference", "subscriptions": ["marketing"]},
             now=now, ordering_key=f"contact:{contact.id}")


def value_errors(session: Session, channels: Channels, e: ValueErrors, now: datetime) -> None:
    channel = channels.by_number(e.route.phone_number_id)
    text = "; ".join(f"{err.code} {err.title}" for err in e.errors)
    log.warning("WhatsApp reported errors for %s: %s", e.route.phone_number_id, text)
    if channel is not None:
        channel.health_message = f"WhatsApp reported: {text}"
        channel.updated_at = now
