"""Hub events -> amoCRM request bodies, and amoCRM answers -> links. Pure functions.

Nothing here sends a request or reads the clock: callers pass what is needed. Bodies
follow amoCRM API v4 (see README.md): contacts carry the phone in the PHONE multitext
field (field_code + enum_code), deals go through /api/v4/leads/complex with their
contact embedded, messages become notes on the deal.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import phonenumbers

from connectors.amocrm.settings import DEAL_NAME_PLACEHOLDERS
from connectors.automation_notes import answers_text
from connectors.base import media_link
from hub.shared.phones import to_e164

MAX_TEXT = 255  # amoCRM text and tracking fields keep 255 characters
MAX_NOTE = 20_000
WON, LOST = 142, 143


class PayloadError(ValueError):
    """An event that does not match docs/events.md (a hub bug): the delivery is dead."""


# -- reading events ---------------------------------------------------------------------
def require(data: Mapping[str, Any], *path: str) -> Any:
    node: Any = data
    for i, key in enumerate(path):
        if not isinstance(node, Mapping) or node.get(key) is None:
            raise PayloadError(f"event data lacks {'.'.join(path[:i + 1])}")
        node = node[key]
    return node


def e164(phone: str | None, region: str | None = None) -> str | None:
    """The phone in E.164, or None when absent or unreadable. `region` (e.g. "RU") reads
    numbers written the national way ("8 912 000-11-22"), as salespeople type them."""
    return to_e164(phone, region)


def contact_key(contact: Mapping[str, Any]) -> tuple[str, str]:
    """The link key of a customer: the phone (one amoCRM contact per phone), or the hub
    contact id for WhatsApp users whose number is hidden."""
    phone = e164(contact.get("phone"))
    if phone:
        return "phone", phone
    if contact.get("id") is None:
        raise PayloadError("event contact has neither phone nor id")
    return "wa_contact", str(contact["id"])


def contact_name(contact: Mapping[str, Any]) -> str:
    for key in ("name", "username"):
        value = (contact.get(key) or "").strip()
        if value:
            return value[:MAX_TEXT]
    phone = e164(contact.get("phone"))
    if phone:
        return phone
    return f"WhatsApp user {contact.get('wa_id') or contact.get('user_id') or contact.get('id')}"


def unix(value: str | datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def _source_value(lead_source: Mapping[str, Any] | None, key: str) -> str | None:
    node: Any = lead_source or {}
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    if node is None or node == "":
        return None
    return str(node)[:MAX_TEXT]


def field_ref(ref: str | int) -> dict[str, Any]:
    ref = str(ref)
    return {"field_id": int(ref)} if ref.isdigit() else {"field_code": ref}


def source_fields(lead_source: Mapping[str, Any] | None, mapping: Mapping[str, str]) -> list[dict[str, Any]]:
    """custom_fields_values for the lead source, per the settings' key -> field mapping."""
    out = []
    for key, ref in mapping.items():
        value = _source_value(lead_source, key)
        if value is not None:
            out.append({**field_ref(ref), "values": [{"value": value}]})
    return out


def deal_name(template: str, conversation: Mapping[str, Any], contact: Mapping[str, Any]) -> str:
    source = conversation.get("lead_source") or {}
    values = {
        "contact_name": contact_name(contact),
        "phone": e164(contact.get("phone")) or "",
        "channel_name": ((conversation.get("channel") or {}).get("name")) or "",
        "conversation_id": str(conversation.get("id", "")),
        "source": source.get("kind") or "",
        "campaign": source.get("campaign") or source.get("utm_campaign") or "",
        "utm_source": source.get("utm_source") or "",
        "utm_medium": source.get("utm_medium") or "",
        "utm_campaign": source.get("utm_campaign") or "",
    }
    assert set(values) == set(DEAL_NAME_PLACEHOLDERS)
    name = template.format(**values).strip()
    return (name or contact_name(contact))[:MAX_TEXT]


def responsible_user(conversation: Mapping[str, Any], settings: Mapping[str, Any]) -> int | None:
    """The amoCRM user for the conversation's operator, else the configured default."""
    assignee = conversation.get("assignee") or {}
    email = (assignee.get("email") or "").lower()
    operators = {k.lower(): v for k, v in (settings.get("operator_users") or {}).items()}
    if email and email in operators:
        return int(operators[email])
    default = settings.get("responsible_user_id")
    return int(default) if default else None


# -- bodies ----------------------------------------------------------------------------------
def contact_body(contact: Mapping[str, Any], settings: Mapping[str, Any],
                 responsible: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": contact_name(contact)}
    phone = e164(contact.get("phone"))
    if phone:
        body["custom_fields_values"] = [{
            "field_code": "PHONE",
            "values": [{"value": phone, "enum_code": settings.get("phone_enum") or "MOB"}],
        }]
    if responsible:
        body["responsible_user_id"] = responsible
    return body


def lead_body(conversation: Mapping[str, Any], contact: Mapping[str, Any], settings: Mapping[str, Any],
              *, contact_id: int | None) -> dict[str, Any]:
    """One element of POST /api/v4/leads/complex: the deal with its contact embedded
    (a new one, or {"id": ...} for a contact amoCRM already has).

    created_at is the conversation's start: true for reports, and with the name and
    pipeline it lets a retry recognise a deal an interrupted attempt created.
    """
    responsible = responsible_user(conversation, settings)
    body: dict[str, Any] = {
        "name": deal_name(settings.get("deal_name_template") or "WhatsApp: {contact_name}",
                          conversation, contact),
    }
    if settings.get("pipeline_id"):
        body["pipeline_id"] = int(settings["pipeline_id"])
    if settings.get("status_id"):
        body["status_id"] = int(settings["status_id"])
    if responsible:
        body["responsible_user_id"] = responsible
    created = unix(conversation.get("opened_at"))
    if created:
        body["created_at"] = created
    cfv = source_fields(conversation.get("lead_source"), settings.get("source_fields") or {})
    if cfv:
        body["custom_fields_values"] = cfv
    embedded: dict[str, Any] = {
        "contacts": [{"id": contact_id} if contact_id else contact_body(contact, settings, responsible)],
    }
    tags = [t for t in (settings.get("tags") or []) if t]
    if tags:
        embedded["tags"] = [{"name": t} for t in tags]
    body["_embedded"] = embedded
    body["request_id"] = str(require(conversation, "id"))
    return body


def wants_note(message: Mapping[str, Any], setting: str) -> bool:
    if setting == "none" or not (message.get("text") or message.get("media") or message.get("template")):
        return False
    direction = message.get("direction")
    return setting == "all" or (setting == "inbound" and direction == "in") or (
        setting == "outbound" and direction == "out")


CHANNEL_LABELS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "instagram": "Instagram"}


def channel_label(conversation: Mapping[str, Any] | None) -> str:
    """The channel a conversation is on, as its notes name it (the payload's
    conversation.channel.kind; WhatsApp when the payload does not say)."""
    kind = str(((conversation or {}).get("channel") or {}).get("kind") or "whatsapp")
    return CHANNEL_LABELS.get(kind, kind.capitalize())


def note_text(message: Mapping[str, Any], contact: Mapping[str, Any], channel: str = "WhatsApp") -> str:
    """A readable timeline entry headed by the message's channel; the hub message id makes
    it unique, so a retry can recognise a note an interrupted attempt already added."""
    who = contact_name(contact)
    when = datetime.fromtimestamp(unix(message.get("timestamp")) or 0, tz=timezone.utc)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    if message.get("direction") == "out":
        author = (message.get("author") or {}).get("name")
        head = f"{channel} #{message.get('id')} → {who}" + (f" (by {author})" if author else "")
    else:
        head = f"{channel} #{message.get('id')} ← {who}"
    lines = [f"{head} · {stamp}"]
    template = message.get("template")
    if template:
        lines.append(f"[template {template.get('name')} ({template.get('language')})]")
    if message.get("text"):
        lines.append(str(message["text"]))
    media = message.get("media") or None
    if media:
        label = media.get("filename") or media.get("mime_type") or message.get("type") or "file"
        lines.append(f"[{message.get('type') or 'media'}: {label}]" + (f" {media_link(media)}" if media_link(media) else ""))
    if message.get("status") == "failed":
        lines.append("[not delivered]")
    return "\n".join(lines)[:MAX_NOTE]


def note_body(lead_id: int, message: Mapping[str, Any], contact: Mapping[str, Any],
              note_type: str, channel: str = "WhatsApp") -> dict[str, Any]:
    text = note_text(message, contact, channel)
    params = {"text": text} if note_type == "common" else {"service": channel, "text": text}
    return {"entity_id": int(lead_id), "note_type": note_type, "params": params,
            "request_id": str(require(message, "id"))}


def contact_note_body(contact_id: int, text: str) -> dict[str, Any]:
    return {"entity_id": int(contact_id), "note_type": "common", "params": {"text": text[:MAX_NOTE]}}


def assignment_patch(lead_id: int, user_id: int) -> dict[str, Any]:
    return {"id": int(lead_id), "responsible_user_id": int(user_id)}


def close_patch(lead_id: int, status_id: int, pipeline_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": int(lead_id), "status_id": int(status_id)}
    if pipeline_id:
        body["pipeline_id"] = int(pipeline_id)
    return body


def automation_note_body(lead_id: int, data: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """A scenario's answers for the deal (automation.step, action deal_fields) as a note:
    amoCRM deals have no free-form fields, and a note keeps who asked what."""
    return {"entity_id": int(lead_id), "note_type": "common", "params": {"text": answers_text(data)[:MAX_NOTE]},
            "request_id": f"automation:{event_id}"}


def _named(items: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    folded = wanted.casefold()
    return next((i for i in items if str(i.get("id")) == wanted or str(i.get("name") or "").casefold() == folded),
                None)


def automation_stage_patch(stage: str, pipeline: str, pipelines: list[dict[str, Any]] | None,
                           default_pipeline_id: Any = None) -> dict[str, Any] | str:
    """A scenario's stage move as the lead's PATCH, or why there is none. amoCRM takes
    status (and pipeline) ids; a stage or pipeline given by name (any case) is looked up
    in the account's pipelines (GET /api/v4/leads/pipelines): in the pipeline named,
    else the connector's pipeline first, then the main one, then the others. A status id
    with no pipeline needs no lookup (`pipelines` may be None)."""
    if stage.isdigit() and (not pipeline or pipeline.isdigit()):
        body: dict[str, Any] = {"status_id": int(stage)}
        if pipeline:
            body["pipeline_id"] = int(pipeline)
        return body
    assert pipelines is not None, "a stage or pipeline named needs the pipelines"
    if pipeline:
        chosen = _named(pipelines, pipeline)
        if chosen is None:
            return f"amoCRM has no pipeline {pipeline!r}"
        candidates = [chosen]
    else:
        candidates = sorted(pipelines, key=lambda p: (str(p.get("id")) != str(default_pipeline_id or ""),
                                                      not p.get("is_main")))
    for p in candidates:
        status = _named(embedded(p, "statuses"), stage)
        if status is not None:
            return {"status_id": int(status["id"]), "pipeline_id": int(p["id"])}
    where = f"pipeline {candidates[0].get('name')!r}" if pipeline else "any amoCRM pipeline"
    return f"no stage {stage!r} in {where}"


def attribution_patch(lead_id: int, lead_source: Mapping[str, Any] | None,
                      mapping: Mapping[str, str]) -> dict[str, Any] | None:
    cfv = source_fields(lead_source, mapping)
    return {"id": int(lead_id), "custom_fields_values": cfv} if cfv else None


# -- answers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Created:
    request_id: str
    lead_id: int
    contact_id: int | None
    merged: bool = False


def complex_created(body: Any) -> dict[str, Created]:
    """POST /api/v4/leads/complex answers a list of {id, contact_id, company_id,
    request_id: [...], merged}; keyed by each request_id."""
    if not isinstance(body, list):
        raise ValueError("leads/complex answered something other than a list")
    out: dict[str, Created] = {}
    for item in body:
        request_ids = item.get("request_id") or []
        if isinstance(request_ids, (str, int)):
            request_ids = [request_ids]
        for rid in request_ids:
            out[str(rid)] = Created(str(rid), int(item["id"]), item.get("contact_id"), bool(item.get("merged")))
    return out


def embedded(body: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(body, Mapping):
        return []
    return list(((body.get("_embedded") or {}).get(key)) or [])


def by_request_id(body: Any, key: str) -> dict[str, dict[str, Any]]:
    return {str(item.get("request_id")): item for item in embedded(body, key) if item.get("request_id") is not None}


def field_values(entity: Mapping[str, Any]) -> dict[str, str]:
    """custom_fields_values as {field id: first value, FIELD_CODE: first value}."""
    out: dict[str, str] = {}
    for cf in entity.get("custom_fields_values") or []:
        values = cf.get("values") or []
        if not values:
            continue
        value = values[0].get("value")
        text = "" if value is None else str(value)
        if cf.get("field_id") is not None:
            out[str(cf["field_id"])] = text
        if cf.get("field_code"):
            out[str(cf["field_code"]).upper()] = text
    return out


def region_of(phone: str) -> str | None:
    """The country of an E.164 number ("RU" for +7 9..), for reading national numbers."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or None
    except phonenumbers.NumberParseException:
        return None


def national_digits(phone: str) -> str:
    """The number without country code: what amoCRM's search finds however it was typed."""
    try:
        return str(phonenumbers.parse(phone).national_number)
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", phone)


def phones(entity: Mapping[str, Any], region: str | None = None) -> list[str]:
    out = []
    for cf in entity.get("custom_fields_values") or []:
        if (cf.get("field_code") or "").upper() == "PHONE" or cf.get("field_type") == "multitext" and \
                (cf.get("field_name") or "").lower() in ("phone", "телефон"):
            for v in cf.get("values") or []:
                phone = e164(str(v.get("value") or ""), region)
                if phone:
                    out.append(phone)
    return out


def lead_view(lead: Mapping[str, Any]) -> dict[str, Any]:
    """A deal for stage rules: {"id", "name", "price", "fields"}."""
    return {"id": lead.get("id"), "name": lead.get("name") or "", "price": lead.get("price"),
            "fields": field_values(lead)}


def contact_view(contact: Mapping[str, Any]) -> dict[str, Any]:
    found = phones(contact)
    return {"id": contact.get("id"), "name": contact.get("name") or "",
            "first_name": contact.get("first_name") or "", "last_name": contact.get("last_name") or "",
            "phone": found[0] if found else "", "fields": field_values(contact)}


def main_contact_id(lead: Mapping[str, Any]) -> int | None:
    contacts = embedded(lead, "contacts")
    for c in contacts:
        if c.get("is_main"):
            return int(c["id"])
    return int(contacts[0]["id"]) if contacts else None


# -- SLA breaches as tasks ----------------------------------------------------------------------
TASK_FOLLOW_UP = 1  # amoCRM's standard task types: 1 follow-up, 2 meeting
TASK_DUE_SECONDS = 30 * 60
SLA_TARGETS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}


def task_text(data: Mapping[str, Any]) -> str:
    """The task for a breached SLA clock: who waits, for what, since when."""
    contact = data.get("contact") or {}
    team = (data.get("team") or {}).get("name") or "the team"
    target = SLA_TARGETS.get(str(data.get("target")), str(data.get("target") or "response"))
    minutes = round((data.get("target_seconds") or 0) / 60)
    elapsed = round((data.get("elapsed_seconds") or 0) / 60)
    text = (f"WhatsApp: {contact_name(contact)} is waiting. The {target} target of {team} ({minutes} min) "
            f"was missed: {elapsed} min in working hours.")
    moved = data.get("reassigned_to") or {}
    if moved.get("name") or moved.get("email"):
        text += f" Handed to {moved.get('name') or moved.get('email')}."
    return text


def task_body(lead_id: int, data: Mapping[str, Any], event_id: str, occurred_at: datetime,
              settings: Mapping[str, Any]) -> dict[str, Any]:
    """POST /api/v4/tasks item: a follow-up on the deal, due TASK_DUE_SECONDS after the
    breach, for the operator now holding the chat (unmapped: the account's default)."""
    body: dict[str, Any] = {"task_type_id": TASK_FOLLOW_UP, "text": task_text(data),
                            "complete_till": int(occurred_at.timestamp()) + TASK_DUE_SECONDS,
                            "entity_id": int(lead_id), "entity_type": "leads", "request_id": str(event_id)}
    user = responsible_user({"assignee": data.get("reassigned_to") or data.get("assignee")}, settings)
    if user:
        body["responsible_user_id"] = user
    return body
