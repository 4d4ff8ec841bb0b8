"""Segments: audiences described by a filter over contacts and their conversations,
evaluated when a broadcast is made (so a contact who wrote yesterday is in it today).

Filter keys (all optional, all must hold):
  channel_id                    the contact has a conversation on this channel
  lead_source                   the conversation's lead source kind (direct, tracked_link, ctwa_ad, ...)
  utm_source, utm_campaign      ... or one of its tags
  last_message_within_days      the customer's last message is at most N days old
  last_message_older_than_days  ... or more than N days old (or they never wrote)
  name_contains                 the contact's name (any case)
  phone_prefix                  the E.164 number starts with this (a country: "+7")
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.models import Contact, Conversation

KEYS = {"channel_id": int, "lead_source": str, "utm_source": str, "utm_campaign": str,
        "last_message_within_days": int, "last_message_older_than_days": int, "name_contains": str,
        "phone_prefix": str}


class SegmentProblem(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def validate(segment: dict[str, Any]) -> dict[str, Any]:
    """The filter, checked: unknown keys and wrong types are refused by name."""
    out: dict[str, Any] = {}
    for key, value in segment.items():
        kind = KEYS.get(key)
        if kind is None:
            raise SegmentProblem(f"unknown segment filter {key!r}; known: {', '.join(sorted(KEYS))}", field=key)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SegmentProblem(f"{key} must be a whole number >= 0", field=key)
        if kind is str and (not isinstance(value, str) or not value.strip()):
            raise SegmentProblem(f"{key} must be a non-empty text", field=key)
        out[key] = value
    return out


def _matches_source(source: dict[str, Any] | None, segment: dict[str, Any]) -> bool:
    source = source or {}
    if "lead_source" in segment and source.get("kind") != segment["lead_source"]:
        return False
    return all(source.get(k) == segment[k] for k in ("utm_source", "utm_campaign") if k in segment)


def evaluate(session: Session, segment: dict[str, Any], *, now: datetime) -> list[dict[str, Any]]:
    """[{"contact_id", "phone", "variables"}] of the contacts matching, ordered by contact id;
    contacts without a phone (username-only) cannot get a template and are left out."""
    segment = validate(segment)
    last_inbound = func.max(Conversation.last_inbound_at).label("last_inbound")
    query = (select(Contact.id, Contact.wa_id, Contact.name, last_inbound)
             .join(Conversation, Conversation.contact_id == Contact.id)
             .where(Contact.wa_id.is_not(None)).group_by(Contact.id, Contact.wa_id, Contact.name)
             .order_by(Contact.id))
    if "channel_id" in segment:
        query = query.where(Conversation.channel_id == segment["channel_id"])
    if "name_contains" in segment:
        query = query.where(func.lower(Contact.name).contains(segment["name_contains"].lower()))
    if "phone_prefix" in segment:
        query = query.where(Contact.wa_id.startswith(segment["phone_prefix"].lstrip("+")))
    if "last_message_within_days" in segment:
        query = query.having(last_inbound >= now - timedelta(days=segment["last_message_within_days"]))
    if "last_message_older_than_days" in segment:
        cut = now - timedelta(days=segment["last_message_older_than_days"])
        query = query.having(or_(last_inbound.is_(None), last_inbound < cut))
    rows = session.execute(query).all()
    if {"lead_source", "utm_source", "utm_campaign"} & segment.keys():
        sources: dict[int, list[dict[str, Any] | None]] = {}
        where = [Conversation.contact_id.in_([r.id for r in rows])] if len(rows) < 30000 else []
        if "channel_id" in segment:
            where.append(Conversation.channel_id == segment["channel_id"])
        for contact_id, source in session.execute(select(Conversation.contact_id, Conversation.lead_source)
                                                  .where(*where)):
            sources.setdefault(contact_id, []).append(source)
        rows = [r for r in rows if any(_matches_source(s, segment) for s in sources.get(r.id, []))]
    return [{"contact_id": r.id, "phone": f"+{r.wa_id}", "variables": {"name": r.name or ""}} for r in rows]
