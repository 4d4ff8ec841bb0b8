"""Hub events -> HubSpot request bodies, and HubSpot answers -> ids. Pure functions.

Nothing here does I/O or reads the clock: the sync module passes in what it knows, so
each function can be tested with fixture bodies alone.
"""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Sequence, TypeVar

from connectors.base import media_link
from hub.shared.phones import to_e164

# Default (HUBSPOT_DEFINED) association type ids, associations v4.
# https://developers.hubspot.com/docs/api/crm/associations#association-type-id-values
DEAL_TO_CONTACT = 3
CONTACT_TO_DEAL = 4
COMMUNICATION_TO_CONTACT = 81
CONTACT_TO_COMMUNICATION = 82
COMMUNICATION_TO_DEAL = 85
DEAL_TO_COMMUNICATION = 86
CONTACT_TO_TASK = 203
TASK_TO_CONTACT = 204
DEAL_TO_TASK = 215
TASK_TO_DEAL = 216

BATCH_LIMIT = 100          # inputs per batch create/read/update
SEARCH_VALUES_LIMIT = 100  # values of one IN filter
SEARCH_PAGE_LIMIT = 200    # results per search page

CHANNEL_TYPE = "WHATS_APP"
LOGGED_FROM = "CRM"

T = TypeVar("T")


class MappingError(ValueError):
    """The event lacks what HubSpot needs (a bug upstream, never fixed by retrying)."""


def chunks(items: Sequence[T], size: int = BATCH_LIMIT) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


# -- contacts ----------------------------------------------------------------------

def e164(phone: str | None) -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number."""
    return to_e164(phone)


def contact_phone(contact: dict[str, Any]) -> str | None:
    return e164(contact.get("phone")) or e164(contact.get("wa_id"))


def contact_key(contact: dict[str, Any]) -> str:
    """The stable WhatsApp identity stored in the unique contact id property."""
    if contact.get("wa_id"):
        return str(contact["wa_id"])
    if contact.get("user_id"):
        return f"user:{contact['user_id']}"
    raise MappingError(f"contact {contact.get('id')} has neither wa_id nor user_id")


def split_name(name: str | None) -> tuple[str, str]:
    parts = (name or "").strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def contact_properties(contact: dict[str, Any], id_property: str) -> dict[str, str]:
    props = {id_property: contact_key(contact)}
    phone = contact_phone(contact)
    if phone:
        props["phone"] = phone
    first, last = split_name(contact.get("name") or contact.get("username"))
    if first:
        props["firstname"] = first
    if last:
        props["lastname"] = last
    return props


def contact_create_input(contact: dict[str, Any], id_property: str) -> dict[str, Any]:
    return {
        "properties": contact_properties(contact, id_property),
        "associations": [],
        "objectWriteTraceId": f"contact-{contact['id']}",
    }


def contact_search_body(contacts: list[dict[str, Any]], id_property: str) -> dict[str, Any]:
    """One search for up to 100 contacts: by the id property, by phone, or by mobile phone
    (filter groups are ORed)."""
    if len(contacts) > SEARCH_VALUES_LIMIT:
        raise ValueError(f"at most {SEARCH_VALUES_LIMIT} contacts per search")
    keys = sorted({contact_key(c) for c in contacts})
    phones = sorted({p for p in (contact_phone(c) for c in contacts) if p})
    groups = [{"filters": [{"propertyName": id_property, "operator": "IN", "values": keys}]}]
    if phones:
        groups.append({"filters": [{"propertyName": "phone", "operator": "IN", "values": phones}]})
        groups.append({"filters": [{"propertyName": "mobilephone", "operator": "IN", "values": phones}]})
    return {
        "filterGroups": groups,
        "properties": [id_property, "phone", "mobilephone", "firstname", "lastname", "createdate"],
        "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
        "limit": SEARCH_PAGE_LIMIT,
    }


def match_contacts(results: list[dict[str, Any]], contacts: list[dict[str, Any]],
                   id_property: str) -> dict[str, str]:
    """hub contact id -> HubSpot contact id. The id property wins over a phone match; among
    several phone matches the oldest record wins (results come sorted by createdate)."""
    by_key: dict[str, str] = {}
    by_phone: dict[str, str] = {}
    for record in results:
        props = record.get("properties") or {}
        if props.get(id_property):
            by_key.setdefault(str(props[id_property]), str(record["id"]))
        for name in ("phone", "mobilephone"):
            phone = e164(props.get(name))
            if phone:
                by_phone.setdefault(phone, str(record["id"]))
    found = {}
    for contact in contacts:
        hit = by_key.get(contact_key(contact))
        if hit is None:
            phone = contact_phone(contact)
            hit = by_phone.get(phone) if phone else None
        if hit is not None:
            found[str(contact["id"])] = hit
    return found


# -- deals -------------------------------------------------------------------------

class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render_deal_name(template: str, conversation: dict[str, Any], contact: dict[str, Any]) -> str:
    channel = conversation.get("channel") or {}
    opened = conversation.get("opened_at") or ""
    values = _Blank(
        contact_name=contact.get("name") or contact.get("username") or contact_phone(contact) or "WhatsApp contact",
        phone=contact_phone(contact) or "",
        wa_id=contact.get("wa_id") or "",
        conversation_id=str(conversation.get("id", "")),
        channel=channel.get("name") or channel.get("display_number") or "",
        date=opened[:10],
    )
    name = template.format_map(values).strip()
    return name or f"WhatsApp conversation {conversation.get('id')}"


def _source_value(lead_source: dict[str, Any], key: str) -> Any:
    if key.startswith("referral."):
        referral = lead_source.get("referral") or {}
        return referral.get(key.split(".", 1)[1])
    return lead_source.get(key)


def source_properties(lead_source: dict[str, Any] | None, mapping: dict[str, str]) -> dict[str, str]:
    """Lead source fields -> deal properties; unknown (null) values are left out."""
    if not lead_source:
        return {}
    props = {}
    for key, prop in mapping.items():
        value = _source_value(lead_source, key)
        if value not in (None, ""):
            props[prop] = str(value)[:65536]
    return props


def deal_properties(conversation: dict[str, Any], contact: dict[str, Any], settings: dict[str, Any],
                    owner_id: str | None) -> dict[str, str]:
    props = {
        "dealname": render_deal_name(settings["deal_name_template"], conversation, contact),
        "pipeline": settings["pipeline_id"],
        "dealstage": settings["stage_id"],
        settings["deal_id_property"]: str(conversation["id"]),
    }
    if owner_id:
        props["hubspot_owner_id"] = str(owner_id)
    props.update(source_properties(conversation.get("lead_source"), settings["source_properties"]))
    return props


def association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": str(to_id)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def deal_create_input(conversation: dict[str, Any], contact: dict[str, Any], contact_crm_id: str,
                      settings: dict[str, Any], owner_id: str | None) -> dict[str, Any]:
    return {
        "properties": deal_properties(conversation, contact, settings, owner_id),
        "associations": [association(contact_crm_id, DEAL_TO_CONTACT)],
        "objectWriteTraceId": f"conversation-{conversation['id']}",
    }


def closed_stages(pipelines: list[dict[str, Any]]) -> set[str]:
    """Stage ids HubSpot marks closed (metadata.isClosed == "true") in any pipeline."""
    return {str(stage["id"]) for pipeline in pipelines for stage in pipeline.get("stages") or []
            if str((stage.get("metadata") or {}).get("isClosed", "")).lower() == "true"}


def _named(items: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    folded = wanted.casefold()
    return next((i for i in items if str(i.get("id")) == wanted or str(i.get("label") or "").casefold() == folded),
                None)


def automation_stage_properties(stage: str, pipeline: str, pipelines: list[dict[str, Any]],
                                default_pipeline_id: str) -> dict[str, str] | str:
    """A scenario's stage move (automation.step, action deal_stage) as the deal's
    dealstage and pipeline, or why there is none. The stage and pipeline may be given by
    id or label (any case); without a pipeline the connector's pipeline is searched
    first, then the others in HubSpot's order."""
    if pipeline:
        chosen = _named(pipelines, pipeline)
        if chosen is None:
            return f"HubSpot has no deal pipeline {pipeline!r}"
        candidates = [chosen]
    else:
        candidates = sorted(pipelines, key=lambda p: (str(p.get("id")) != default_pipeline_id,
                                                      p.get("displayOrder") or 0))
    for p in candidates:
        found = _named([s for s in p.get("stages") or [] if not s.get("archived")], stage)
        if found is not None:
            return {"dealstage": str(found["id"]), "pipeline": str(p["id"])}
    where = f"pipeline {candidates[0].get('label')!r}" if pipeline else "any HubSpot deal pipeline"
    return f"no stage {stage!r} in {where}"


def is_open_deal(deal: dict[str, Any], pipeline_id: str, closed_stages: set[str]) -> bool:
    props = deal.get("properties") or {}
    return props.get("pipeline") == pipeline_id and props.get("dealstage") not in closed_stages


def newest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recently created record (createdAt, then id, as tie-break)."""
    if not records:
        return None
    return max(records, key=lambda r: (r.get("createdAt") or "", int(r["id"])))


# -- communications -----------------------------------------------------------------

def should_log(message: dict[str, Any], mode: str) -> bool:
    if mode == "all":
        return True
    if mode == "inbound":
        return message.get("direction") == "in"
    if mode == "outbound":
        return message.get("direction") == "out"
    return False


def parse_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def message_timestamp_ms(message: dict[str, Any]) -> int:
    """The message time in ms. WhatsApp times have whole seconds, so the milliseconds carry
    the message id (mod 1000): two messages of one conversation in the same second stay
    distinguishable when a retry looks for communications already created."""
    if not message.get("timestamp"):
        raise MappingError(f"message {message.get('id')} has no timestamp")
    seconds = int(parse_time(message["timestamp"]).timestamp())
    return seconds * 1000 + int(message.get("id") or 0) % 1000


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def timestamp_to_ms(value: Any) -> int | None:
    """hs_timestamp as HubSpot returns it (ISO string or epoch ms) -> epoch ms."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        when = parse_time(text)
    except ValueError:
        return None
    return int(round(when.timestamp() * 1000))


def communication_body(message: dict[str, Any], contact: dict[str, Any]) -> str:
    """What the timeline shows: who wrote, then the text (HTML-escaped), media and template."""
    if message.get("direction") == "in":
        who = contact.get("name") or contact.get("username") or contact_phone(contact) or "Customer"
        head = f"WhatsApp from {who}"
    else:
        author = (message.get("author") or {}).get("name")
        head = f"WhatsApp to customer{' by ' + author if author else ''}"
    parts = [f"<b>{html.escape(head)}</b>"]
    template = message.get("template")
    if template:
        parts.append(html.escape(f"[template {template.get('name')} ({template.get('language')})]"))
    text = message.get("text")
    if text:
        parts.append(html.escape(text).replace("\n", "<br>"))
    elif message.get("type") == "reaction":
        parts.append("(reaction removed)")
    elif not template:
        parts.append(html.escape(f"({message.get('type') or 'message'})"))
    media = message.get("media") or {}
    link = media_link(media)
    if link:
        label = media.get("filename") or media.get("mime_type") or "attachment"
        parts.append(f'<a href="{html.escape(link, quote=True)}">{html.escape(label)}</a>')
    return "<br>".join(parts)


def communication_properties(message: dict[str, Any], contact: dict[str, Any],
                             owner_id: str | None) -> dict[str, str]:
    props = {
        "hs_communication_channel_type": CHANNEL_TYPE,
        "hs_communication_logged_from": LOGGED_FROM,
        "hs_communication_body": communication_body(message, contact),
        "hs_timestamp": iso_ms(message_timestamp_ms(message)),
    }
    if owner_id:
        props["hubspot_owner_id"] = str(owner_id)
    return props


def communication_create_input(message: dict[str, Any], contact: dict[str, Any], contact_crm_id: str,
                               deal_crm_id: str, owner_id: str | None) -> dict[str, Any]:
    return {
        "properties": communication_properties(message, contact, owner_id),
        "associations": [
            association(contact_crm_id, COMMUNICATION_TO_CONTACT),
            association(deal_crm_id, COMMUNICATION_TO_DEAL),
        ],
        "objectWriteTraceId": f"message-{message['id']}",
    }


def communication_key(properties: dict[str, Any]) -> tuple[int | None, str]:
    """What identifies a communication we created: its timestamp (ms) and body."""
    return timestamp_to_ms(properties.get("hs_timestamp")), properties.get("hs_communication_body") or ""


# -- tasks (sla.breached) -------------------------------------------------------------

TASK_DUE = timedelta(minutes=30)
TASK_STATUS = "NOT_STARTED"
TASK_PRIORITY = "HIGH"
TASK_TYPE = "TODO"
SLA_TARGETS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}
_TASK_MARKER = re.compile(r"\[hub:sla:([^\]\s]+)\]")


def task_marker(event_id: str) -> str:
    """Ends every SLA task's body: tasks have no unique property, so a retry after a lost
    answer recognises the task an earlier try wrote by this text on the deal's tasks."""
    return f"[hub:sla:{event_id}]"


def task_event_id(properties: dict[str, Any]) -> str | None:
    """The hub event id a task body carries (task_marker), or None for other tasks."""
    match = _TASK_MARKER.search(str(properties.get("hs_task_body") or ""))
    return match.group(1) if match else None


def _user_name(user: dict[str, Any] | None) -> str:
    return str((user or {}).get("name") or (user or {}).get("email") or "")


def task_subject(data: dict[str, Any]) -> str:
    contact = data.get("contact") or {}
    who = contact.get("name") or contact.get("username") or contact_phone(contact) or "A WhatsApp customer"
    target = SLA_TARGETS.get(str(data.get("target")), str(data.get("target") or "response"))
    return f"WhatsApp: {who} is waiting ({target} target missed)"


def task_body(data: dict[str, Any], event_id: str) -> str:
    """Which target of which team was missed, by how much, who holds the chat now."""
    contact = data.get("contact") or {}
    team = (data.get("team") or {}).get("name") or "the team"
    target = SLA_TARGETS.get(str(data.get("target")), str(data.get("target") or "response"))
    minutes = round((data.get("target_seconds") or 0) / 60)
    elapsed = round((data.get("elapsed_seconds") or 0) / 60)
    who = contact.get("name") or contact.get("username") or "Customer"
    phone = contact_phone(contact)
    lines = [f"{who}{' (' + phone + ')' if phone else ''} is waiting on WhatsApp.",
             f"The {target} target of {team} ({minutes} min) was missed: {elapsed} min in working hours"
             + (f" since {data['clock_started_at']}." if data.get("clock_started_at") else ".")]
    holder = _user_name(data.get("assignee"))
    moved = _user_name(data.get("reassigned_to"))
    if moved:
        lines.append(f"Handed to {moved}" + (f" (was {holder})." if holder else "."))
    elif holder:
        lines.append(f"Operator: {holder}.")
    else:
        lines.append("Nobody holds the chat.")
    supervisor = _user_name(data.get("supervisor"))
    if supervisor:
        lines.append(f"Supervisor: {supervisor}.")
    lines.append(task_marker(event_id))
    return "<br>".join(html.escape(line) for line in lines)


def task_holder(data: dict[str, Any]) -> dict[str, Any] | None:
    """The operator now holding the chat: after a reassignment on breach, the new one."""
    return data.get("reassigned_to") or data.get("assignee")


def task_properties(data: dict[str, Any], event_id: str, breached_at: datetime,
                    owner_id: str | None) -> dict[str, str]:
    due_ms = int((breached_at + TASK_DUE).timestamp() * 1000)
    props = {
        "hs_timestamp": iso_ms(due_ms),
        "hs_task_subject": task_subject(data),
        "hs_task_body": task_body(data, event_id),
        "hs_task_status": TASK_STATUS,
        "hs_task_priority": TASK_PRIORITY,
        "hs_task_type": TASK_TYPE,
    }
    if owner_id:
        props["hubspot_owner_id"] = str(owner_id)
    return props


def task_create_input(data: dict[str, Any], event_id: str, breached_at: datetime, deal_crm_id: str,
                      contact_crm_id: str | None, owner_id: str | None) -> dict[str, Any]:
    """One input of POST /crm/v3/objects/tasks/batch/create: due TASK_DUE after the breach,
    associated to the deal (216) and the contact (204) in the same request."""
    associations = [association(deal_crm_id, TASK_TO_DEAL)]
    if contact_crm_id:
        associations.append(association(contact_crm_id, TASK_TO_CONTACT))
    return {
        "properties": task_properties(data, event_id, breached_at, owner_id),
        "associations": associations,
        "objectWriteTraceId": f"sla-{event_id}",
    }


def tasks_by_event(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """hub event id -> HubSpot task id, from tasks read back (the oldest wins)."""
    out: dict[str, str] = {}
    for record in sorted(records, key=lambda r: int(r["id"])):
        event_id = task_event_id(record.get("properties") or {})
        if event_id:
            out.setdefault(event_id, str(record["id"]))
    return out


# -- answers --------------------------------------------------------------------------

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


def conflict_existing_id(body: dict[str, Any] | None) -> str | None:
    """The id named by a 409 CONFLICT answer ("Contact already exists. Existing ID: 123")."""
    if not body:
        return None
    match = _EXISTING_ID.search(str(body.get("message") or ""))
    return match.group(1) if match else None


def validation_problems(body: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(property, error code, message) from a 400 VALIDATION_ERROR answer.

    HubSpot puts the property errors as a JSON list in `message` ("Property values were
    not valid: [...]") and, on newer endpoints, in `errors[].context.propertyName`."""
    if not body:
        return []
    problems: list[tuple[str, str, str]] = []
    message = str(body.get("message") or "")
    start = message.find("[")
    if start >= 0:
        try:
            items = json.loads(message[start:])
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("name"):
                problems.append((str(item["name"]), str(item.get("error") or ""), str(item.get("message") or "")))
    if not problems:
        for err in body.get("errors") or []:
            names = ((err.get("context") or {}).get("propertyName")) or []
            for name in names:
                problems.append((str(name), str(err.get("code") or ""), str(err.get("message") or "")))
    return problems


def describe_problems(problems: list[tuple[str, str, str]], fallback: str) -> str:
    if not problems:
        return fallback
    return "; ".join(f"property {name!r}: {message or code}" for name, code, message in problems)


def results_by_trace(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Batch create answers are not promised in input order: index them by the
    objectWriteTraceId we sent."""
    return {str(r["objectWriteTraceId"]): r for r in results if r.get("objectWriteTraceId")}


def results_by_property(results: Iterable[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    out = {}
    for r in results:
        value = (r.get("properties") or {}).get(name)
        if value not in (None, ""):
            out[str(value)] = r
    return out
