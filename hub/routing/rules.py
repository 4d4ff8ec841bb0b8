"""Routing rule conditions: validated once when saved, matched as pure functions.

A rule's conditions all have to hold (an absent one holds). Lists mean "any of":

    channel_ids      [1, 2]                 the conversation's channel
    lead_kinds       ["tracked_link", "ad"] how the lead came (lead_source.kind; "ad" =
                                            a Click-to-WhatsApp referral)
    utm_source, utm_medium, utm_campaign    ["google"], ... (case-insensitive)
    keywords         ["price", "цена"]      a word or phrase in the first message
                                            (case-insensitive, Russian and English folding)
    contact          {"name": "ООО"}        the contact field contains the text
    hours            ["09:00", "18:00"]     time of day in `time_zone` (past midnight
                                            when the end is not after the start)
    time_zone        "Europe/Moscow"        for `hours` (UTC without one)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.routing.hours import HoursError, _minutes, zone

LIST_KEYS = ("channel_ids", "lead_kinds", "utm_source", "utm_medium", "utm_campaign", "keywords")
KNOWN = frozenset(LIST_KEYS + ("contact", "hours", "time_zone"))
CONTACT_FIELDS = frozenset({"name", "phone", "wa_id", "username"})


class RuleError(ValueError):
    """Conditions that cannot be used; the message names the condition."""


@dataclass(frozen=True)
class Facts:
    """What the rules see of a conversation when it is routed."""

    channel_id: int
    now: datetime
    lead_source: dict[str, Any] | None = None
    first_text: str = ""
    contact: dict[str, Any] = field(default_factory=dict)


def validate(conditions: Any) -> dict[str, Any]:
    """The conditions, checked (RuleError names what is wrong)."""
    if not isinstance(conditions, dict):
        raise RuleError("conditions: expected an object")
    unknown = set(conditions) - KNOWN
    if unknown:
        raise RuleError(f"conditions: unknown condition(s) {', '.join(sorted(unknown))}")
    for key in LIST_KEYS:
        if key in conditions:
            values = conditions[key]
            if not isinstance(values, list) or not values:
                raise RuleError(f"conditions.{key}: expected a non-empty list")
            wanted = int if key == "channel_ids" else str
            if not all(isinstance(v, wanted) and not isinstance(v, bool) for v in values):
                raise RuleError(f"conditions.{key}: expected a list of {'ids' if wanted is int else 'texts'}")
            if wanted is str and not all(v.strip() for v in values):
                raise RuleError(f"conditions.{key}: empty text")
    if "contact" in conditions:
        contact = conditions["contact"]
        if not isinstance(contact, dict) or not contact:
            raise RuleError("conditions.contact: expected an object of contact fields")
        for name, value in contact.items():
            if name not in CONTACT_FIELDS:
                raise RuleError(f"conditions.contact: {name!r} is not a contact field "
                                f"({', '.join(sorted(CONTACT_FIELDS))})")
            if not isinstance(value, str) or not value.strip():
                raise RuleError(f"conditions.contact.{name}: expected a text")
    if "hours" in conditions:
        hours = conditions["hours"]
        if not (isinstance(hours, list) and len(hours) == 2):
            raise RuleError("conditions.hours: expected [start, end]")
        try:
            start, end = _minutes(hours[0], "conditions.hours"), _minutes(hours[1], "conditions.hours")
        except HoursError as exc:
            raise RuleError(str(exc)) from None
        if start == end:
            raise RuleError("conditions.hours: start and end are the same")
    if "time_zone" in conditions:
        try:
            zone(conditions["time_zone"])
        except HoursError as exc:
            raise RuleError(f"conditions.time_zone: {exc}") from None
    return conditions


def fold(text: str) -> str:
    """Case folding that also makes ё and е one letter, as people type them."""
    return text.casefold().replace("ё", "е")


def matches(conditions: dict[str, Any], facts: Facts) -> bool:
    if "channel_ids" in conditions and facts.channel_id not in conditions["channel_ids"]:
        return False
    source = facts.lead_source or {}
    if "lead_kinds" in conditions:
        kind = "ad" if source.get("referral") or source.get("kind") == "referral" else source.get("kind")
        if kind not in conditions["lead_kinds"]:
            return False
    for key in ("utm_source", "utm_medium", "utm_campaign"):
        if key in conditions:
            value = fold(str(source.get(key) or ""))
            if value not in {fold(v) for v in conditions[key]}:
                return False
    if "keywords" in conditions:
        text = fold(facts.first_text or "")
        if not any(fold(word) in text for word in conditions["keywords"]):
            return False
    for name, wanted in (conditions.get("contact") or {}).items():
        if fold(wanted) not in fold(str(facts.contact.get(name) or "")):
            return False
    if "hours" in conditions:
        local = facts.now.astimezone(zone(conditions.get("time_zone", "UTC")))
        minute = local.hour * 60 + local.minute
        start, end = (_minutes(v, "conditions.hours") for v in conditions["hours"])
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return False
    return True
