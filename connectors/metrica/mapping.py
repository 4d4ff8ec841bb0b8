"""Conversions -> the CSV of /management/v1/counter/{id}/offline_conversions/upload (pure).

The first line names the columns: the visitor ids (ClientId: the _ym_uid cookie; Yclid:
the Direct click), Target (the goal id), DateTime (Unix seconds, in the past), Price and
Currency. A CHATS upload (the chat itself, counted under Metrica's automatic "Chat" goal)
has DateTime, ChatPlatform (whatsapp) and the conversation partner (ChatUserID: the hub's
opaque contact id, never the phone) instead of Target and Price. One upload per hub event; its comment names the conversion, so a retry after a
lost answer finds the upload it already made.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any

from connectors.analytics import Conversion, Malformed, Skip, unix

DIGITS = re.compile(r"^\d{1,25}$")


def visitor_ids(conversion: Conversion) -> dict[str, str]:
    source = conversion.lead_source
    if not source:
        raise Skip("the conversation has no lead source (not from a tracked link): no ClientID or yclid to send")
    ids = {}
    for column, key in (("ClientId", "ym_uid"), ("Yclid", "yclid")):
        value = str(source.get(key) or "").strip()
        if not value:
            continue
        if not DIGITS.match(value):
            raise Malformed(f"{'ClientID (_ym_uid)' if key == 'ym_uid' else 'yclid'} {value[:60]!r} is malformed "
                            "(Metrica ids are digits); not sent")
        ids[column] = value
    if not ids:
        raise Skip(f"the lead source ({source.get('kind')}) carries no Metrica ClientID (_ym_uid) or yclid")
    return ids


def upload_type(conversions: list[Conversion], settings: dict[str, Any]) -> str:
    first_messages = all(c.goal.trigger == "first_message" for c in conversions)
    return "CHATS" if first_messages and settings.get("chats_upload") else "BASIC"


def comment(conversions: list[Conversion]) -> str:
    """Names the upload after its conversions (digits, Latin letters and spaces only)."""
    text = "hub " + " ".join(f"{c.order_id} {c.goal.name}" for c in conversions)
    return re.sub(r"[^0-9A-Za-z ]+", " ", text)[:255]


def csv_file(conversions: list[Conversion], settings: dict[str, Any]) -> str:
    ids = visitor_ids(conversions[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if upload_type(conversions, settings) == "CHATS":
        writer.writerow([*ids, "DateTime", "ChatPlatform", "ChatUserID"])
        first = conversions[0]  # one chat, whatever goals name it
        writer.writerow([*ids.values(), unix(first.occurred_at), "whatsapp", f"hub-{first.contact.get('id')}"])
        return out.getvalue()
    writer.writerow([*ids, "Target", "DateTime", "Price", "Currency"])
    for c in conversions:
        price = "" if c.value is None else f"{c.value:.2f}"
        currency = "" if c.value is None else (c.currency or settings.get("currency") or "RUB")
        writer.writerow([*ids.values(), c.goal.name, unix(c.occurred_at), price, currency])
    return out.getvalue()
