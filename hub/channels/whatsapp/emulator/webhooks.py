"""Webhook payloads the emulator sends, built the way Meta builds them.

An `Update` is one thing Meta reports (an inbound message, a status, a template status
change...). The driver batches updates into envelopes with `build_envelope`: one entry
per WABA, one change per (field, number, kind), timestamps as strings inside
`messages`/`statuses` and integers in `entry.time` (spec §2.1, §13.5).
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from hub.channels.whatsapp.emulator.state import Number

# kinds that merge into one change's value array
ARRAY_KEYS = {"message": "messages", "status": "statuses", "user_preference": "user_preferences",
              "error": "errors"}

PMP_FROM = datetime(2025, 7, 1, tzinfo=timezone.utc)
SERVICE_FREE_FROM = datetime(2024, 11, 1, tzinfo=timezone.utc)
SERVICE_BILLED_FROM = datetime(2026, 10, 1, tzinfo=timezone.utc)

_seq = itertools.count(1)


@dataclass
class Update:
    number: Number  # where it goes (webhook URL, signing) and whose metadata it carries
    field: str  # changes[].field: messages, message_template_status_update, ...
    kind: str  # message | status | user_preference | error | value (a whole change value)
    item: dict[str, Any]
    contact: dict[str, Any] | None = None  # value.contacts[] entry for messages/statuses
    time: int | None = None  # entry.time for non-messages fields
    group: str | None = None  # the message id a status belongs to (for reordering)
    seq: int = field(default_factory=lambda: next(_seq))

    def copy(self) -> "Update":
        return replace(self, item=dict(self.item), seq=next(_seq))


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def new_wamid(wa_id: str | None) -> str:
    """Unique, wamid-shaped: base64 over the user's number and random bytes."""
    raw = b"\x18\x0b" + (wa_id or "0").encode() + b"\x15\x02\x00\x12\x18\x14" + os.urandom(12)
    return "wamid." + base64.b64encode(raw).decode()


def bsuid_for(country: str, seed: str) -> str:
    """A stable business-scoped user id (spec §2.4): CC. + digits."""
    digits = str(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")).zfill(19)
    return f"{country}.{digits[:19]}"


def pricing(at: datetime, *, is_template: bool, category: str | None, csw_open: bool,
            fep_open: bool) -> dict[str, Any]:
    """The `pricing` object of a status for a message sent at `at` (spec §4.2, §9)."""
    cat = (category or "").lower() if is_template else "service"
    if at < PMP_FROM:
        if fep_open:
            return {"billable": False, "pricing_model": "CBP", "category": "referral_conversion"}
        billable = not (cat == "service" and at >= SERVICE_FREE_FROM)
        return {"billable": billable, "pricing_model": "CBP", "category": cat}
    if fep_open:
        return {"billable": False, "pricing_model": "PMP", "type": "free_entry_point",
                "category": "referral_conversion"}
    service_billed = at >= SERVICE_BILLED_FROM
    if not is_template:
        if service_billed:
            return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "service"}
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                "category": "service"}
    if cat == "utility" and csw_open and not service_billed:
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                "category": "utility"}
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": cat}


def status_item(message_id: str, status: str, ts: int, recipient_id: str | None, *,
                recipient_user_id: str | None = None, biz_opaque: str | None = None,
                pricing_: dict[str, Any] | None = None, conversation: dict[str, Any] | None = None,
                errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(ts)}
    if recipient_id:
        item["recipient_id"] = recipient_id
    if recipient_user_id and status != "failed":
        item["recipient_user_id"] = recipient_user_id
    if biz_opaque is not None:
        item["biz_opaque_callback_data"] = biz_opaque
    if conversation is not None:
        item["conversation"] = conversation
    if pricing_ is not None:
        item["pricing"] = pricing_
    if errors:
        item["errors"] = errors
    return item


def contact_entry(wa_id: str | None, user_id: str | None, name: str = "",
                  username: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"name": name}
    if username:
        profile["username"] = username
    entry: dict[str, Any] = {"profile": profile}
    if wa_id:
        entry["wa_id"] = wa_id
    if user_id:
        entry["user_id"] = user_id
    return entry


def _metadata(number: Number) -> dict[str, str]:
    return {"display_phone_number": number.display_phone_number,
            "phone_number_id": number.phone_number_id}


def build_envelope(updates: list[Update]) -> dict[str, Any]:
    """One POST body for updates bound to the same destination, order kept per array."""
    entries: dict[tuple[str, bool], dict[str, Any]] = {}
    changes: dict[tuple[str, bool, str, str, str], dict[str, Any]] = {}
    for upd in updates:
        timed = upd.field != "messages"
        ekey = (upd.number.waba_id, timed)
        entry = entries.get(ekey)
        if entry is None:
            entry = {"id": upd.number.waba_id, "changes": []}
            if timed:
                entry["time"] = upd.time if upd.time is not None else 0
            entries[ekey] = entry
        if upd.kind not in ARRAY_KEYS:
            entry["changes"].append({"field": upd.field, "value": upd.item})
            continue
        ckey = (upd.number.waba_id, timed, upd.field, upd.number.phone_number_id, upd.kind)
        value = changes.get(ckey)
        if value is None:
            value = {"messaging_product": "whatsapp", "metadata": _metadata(upd.number)}
            changes[ckey] = value
            entry["changes"].append({"field": upd.field, "value": value})
        if upd.contact is not None:
            contacts = value.setdefault("contacts", [])
            if upd.contact not in contacts:
                contacts.append(upd.contact)
        value.setdefault(ARRAY_KEYS[upd.kind], []).append(upd.item)
    # `contacts` conventionally precedes messages/statuses in Meta's bodies
    for value in changes.values():
        if "contacts" in value:
            arrays = {k: value.pop(k) for k in list(value) if k in ARRAY_KEYS.values()}
            value.update(arrays)
    return {"object": "whatsapp_business_account", "entry": list(entries.values())}


def template_status_value(template_id: str, name: str, language: str, event: str, *,
                          category: str, reason: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template_id),  # an integer here, a string in Graph GETs
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
        "message_template_category": category,
    }
    value.update(extra)
    return value
