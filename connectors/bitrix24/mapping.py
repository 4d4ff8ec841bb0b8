"""Hub events -> Bitrix24 field sets, and Bitrix24 answers -> facts. Pure functions.

Everything the connector writes is marked ORIGINATOR_ID=whatsapp-hub and ORIGIN_ID=<hub
id> (Bitrix24's own "external source" fields), so a retry after a crash can find what an
earlier try created, and a deal's event can be traced back to its conversation.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


from connectors.automation_notes import stage_move
from connectors.bitrix24 import rules
from connectors.base import ReportDealStage, media_link
from hub.shared.phones import to_e164

ORIGINATOR = "whatsapp-hub"
CONVERSATION_LINK = {"deal": "conversation", "lead": "conversation.lead"}
TIMELINE_ENTITY = {"deal": "deal", "lead": "lead"}
DIRECTION_LABEL = {"in": "WhatsApp from", "out": "WhatsApp to"}


@dataclass(frozen=True)
class Options:
    """The settings, parsed once per connector instance."""

    target: str = "deal"
    category_id: int = 0
    stage_id: str = ""
    lead_status_id: str = "NEW"
    source_id: str = ""
    title_template: str = "WhatsApp: {contact_name}"
    reuse: str = "open"
    timeline: str = "all"
    utm_mapping: tuple[tuple[str, str], ...] = ()
    operators: tuple[tuple[str, int], ...] = ()
    default_assigned_by_id: int | None = None
    close_stage_id: str = ""
    stage_rules: tuple[rules.StageRule, ...] = ()
    report_stages: bool = False
    new_channel_opens_deal: bool = False

    @classmethod
    def from_settings(cls, s: dict[str, Any]) -> "Options":
        return cls(
            target=s.get("target") or "deal",
            category_id=int(s.get("deal_category_id") or 0),
            stage_id=s.get("deal_stage_id") or "",
            lead_status_id=s.get("lead_status_id") or "NEW",
            source_id=s.get("source_id") or "",
            title_template=s.get("title_template") or "WhatsApp: {contact_name}",
            reuse=s.get("reuse") or "open",
            timeline=s.get("timeline") or "all",
            utm_mapping=tuple(rules.parse_field_mapping(s.get("utm_mapping", rules.DEFAULT_UTM_MAPPING))),
            operators=tuple(sorted(rules.parse_operator_map(s.get("operator_map")).items())),
            default_assigned_by_id=s.get("default_assigned_by_id"),
            close_stage_id=s.get("close_stage_id") or "",
            stage_rules=tuple(rules.parse_rules(s.get("stage_rules"))),
            report_stages=bool(s.get("report_deal_stages")),
            new_channel_opens_deal=bool(s.get("new_channel_opens_deal")),
        )

    @property
    def entity(self) -> str:
        return self.target

    @property
    def conversation_link(self) -> str:
        return CONVERSATION_LINK[self.target]


# -- contacts ---------------------------------------------------------------------------
def normalize_phone(raw: str | None) -> str | None:
    """E.164 ("+15557654321") or None; Bitrix24 stores phones as typed, so compare these.
    A number that does not parse still compares by its digits."""
    digits = "".join(ch for ch in str(raw or "") if ch.isdigit())
    if not digits:
        return None
    return to_e164(str(raw)) or "+" + digits


def contact_phone(contact: dict[str, Any]) -> str | None:
    # Only `phone`: when WhatsApp hides the number (username-only users) wa_id is no phone.
    return normalize_phone(contact.get("phone"))


def contact_key(contact: dict[str, Any]) -> str:
    """What makes two hub contacts the same CRM contact: the phone, else the hub id."""
    return contact_phone(contact) or f"hub:{contact['id']}"


def display_name(contact: dict[str, Any]) -> str:
    return (contact.get("name") or contact.get("username") or contact_phone(contact)
            or f"WhatsApp user {contact.get('id')}")


def contact_fields(contact: dict[str, Any], options: Options) -> dict[str, Any]:
    name = (contact.get("name") or contact.get("username") or "").strip()
    first, _, last = name.partition(" ")
    fields: dict[str, Any] = {
        "NAME": first or display_name(contact),
        "OPENED": "Y",
        "ORIGINATOR_ID": ORIGINATOR,
        "ORIGIN_ID": str(contact["id"]),
    }
    if last:
        fields["LAST_NAME"] = last.strip()
    phone = contact_phone(contact)
    if phone:
        fields["PHONE"] = [{"VALUE": phone, "VALUE_TYPE": "MOBILE"}]
    if options.source_id:
        fields["SOURCE_ID"] = options.source_id
    if options.default_assigned_by_id:
        fields["ASSIGNED_BY_ID"] = options.default_assigned_by_id
    return fields


def phones_of(crm_contact: dict[str, Any]) -> list[str]:
    """Normalised phones of a crm.contact.get/list row (PHONE multifield)."""
    out = []
    for item in crm_contact.get("PHONE") or []:
        phone = normalize_phone(item.get("VALUE") if isinstance(item, dict) else None)
        if phone:
            out.append(phone)
    return out


def found_contact_ids(findbycomm_result: Any) -> list[int]:
    """crm.duplicate.findbycomm answers {"CONTACT": [4, 5]} or [] when nothing matched."""
    if not isinstance(findbycomm_result, dict):
        return []
    return sorted(int(i) for i in findbycomm_result.get("CONTACT") or [])


# -- deals and leads ---------------------------------------------------------------------
def operator_email(user_id: int, operators: tuple[tuple[str, int], ...]) -> str | None:
    """The hub operator mapped to a Bitrix24 user; None when none is, or several are."""
    emails = [email for email, mapped in operators if mapped == user_id]
    return emails[0] if len(emails) == 1 else None


def assigned_user(assignee: dict[str, Any] | None, options: Options) -> int | None:
    if assignee and assignee.get("email"):
        mapped = dict(options.operators).get(str(assignee["email"]).lower())
        if mapped:
            return mapped
    return options.default_assigned_by_id


def _source_value(lead_source: dict[str, Any], key: str) -> Any:
    if "." in key:
        head, tail = key.split(".", 1)
        nested = lead_source.get(head) or {}
        return nested.get(tail) if isinstance(nested, dict) else None
    return lead_source.get(key)


def lead_source_fields(lead_source: dict[str, Any] | None, options: Options) -> dict[str, Any]:
    if not lead_source:
        return {}
    out: dict[str, Any] = {}
    for field, key in options.utm_mapping:
        value = _source_value(lead_source, key)
        if value not in (None, ""):
            out[field] = str(value)
    return out


def title(conversation: dict[str, Any], contact: dict[str, Any], options: Options) -> str:
    source = conversation.get("lead_source") or {}
    values = {
        "contact_name": display_name(contact),
        "phone": contact_phone(contact) or "",
        "conversation_id": conversation.get("id", ""),
        "channel_name": (conversation.get("channel") or {}).get("name", ""),
        "source": source.get("utm_source") or source.get("kind") or "",
        "campaign": source.get("campaign") or source.get("utm_campaign") or "",
    }
    return options.title_template.format(**values).strip() or f"WhatsApp #{conversation.get('id')}"


def entity_fields(conversation: dict[str, Any], contact: dict[str, Any], contact_id: Any,
                  options: Options) -> dict[str, Any]:
    """Fields of a new deal (or lead) for a conversation, from its current snapshot."""
    fields: dict[str, Any] = {
        "TITLE": title(conversation, contact, options),
        "CONTACT_ID": contact_id,
        "OPENED": "Y",
        "ORIGINATOR_ID": ORIGINATOR,
        "ORIGIN_ID": str(conversation["id"]),
    }
    closing = conversation.get("status") == "closed" and options.close_stage_id
    if options.target == "deal":
        fields["CATEGORY_ID"] = options.category_id
        stage = options.close_stage_id if closing else options.stage_id
        if stage:
            fields["STAGE_ID"] = stage
    else:
        fields["STATUS_ID"] = options.close_stage_id if closing else options.lead_status_id
    if options.source_id:
        fields["SOURCE_ID"] = options.source_id
    source = conversation.get("lead_source") or {}
    if source.get("kind") and "SOURCE_DESCRIPTION" not in dict(options.utm_mapping):
        fields["SOURCE_DESCRIPTION"] = source_description(source)
    fields.update(lead_source_fields(source, options))
    user = assigned_user(conversation.get("assignee"), options)
    if user:
        fields["ASSIGNED_BY_ID"] = user
    return fields


def source_description(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "ad_referral":
        ref = source.get("referral") or {}
        return f"WhatsApp ad: {ref.get('headline') or ref.get('source_url') or ref.get('source_id') or 'click-to-WhatsApp'}"
    if kind == "tracked_link":
        return f"WhatsApp link: {source.get('campaign') or source.get('link') or source.get('code') or ''}".strip()
    return "WhatsApp: direct"


def close_fields(options: Options) -> dict[str, Any]:
    if not options.close_stage_id:
        return {}
    return {"STAGE_ID" if options.target == "deal" else "STATUS_ID": options.close_stage_id}


def automation_stage_fields(data: dict[str, Any], options: Options) -> dict[str, Any]:
    """A scenario's stage move (automation.step, action deal_stage) as the deal's STAGE_ID
    (the lead's STATUS_ID): a Bitrix24 stage id as crm.status.list names it, e.g.
    PREPARATION, or C1:WON in pipeline (category) 1: the id carries its pipeline."""
    move = stage_move(data)
    if move is None:
        return {}
    return {"STAGE_ID" if options.target == "deal" else "STATUS_ID": move[0]}


def open_filter(contact_id: int, options: Options) -> dict[str, Any]:
    """crm.deal.list / crm.lead.list filter for the contact's open deal in the pipeline."""
    if options.target == "deal":
        return {"CONTACT_ID": contact_id, "CATEGORY_ID": options.category_id, "CLOSED": "N"}
    return {"CONTACT_ID": contact_id, "STATUS_SEMANTIC_ID": "P"}


# -- timeline ----------------------------------------------------------------------------
def wants_on_timeline(message: dict[str, Any] | None, options: Options) -> bool:
    if not message or options.timeline == "none":
        return False
    if message.get("text") is None and not message.get("media") and not message.get("template"):
        return False
    direction = message.get("direction")
    return options.timeline == "all" or (options.timeline == "inbound" and direction == "in") or (
        options.timeline == "outbound" and direction == "out")


def _stamp(value: str | None) -> str:
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def comment_text(message: dict[str, Any], contact: dict[str, Any]) -> str:
    """The timeline comment for a message. Deterministic, so a retry can recognise a
    comment an interrupted earlier try already wrote."""
    direction = message.get("direction", "in")
    who = display_name(contact)
    head = f"{DIRECTION_LABEL.get(direction, 'WhatsApp')} {who}"
    author = message.get("author") or {}
    if direction == "out" and author.get("name"):
        head += f" (by {author['name']})"
    head += f", {_stamp(message.get('timestamp'))}"
    lines = [f"[B]{head}[/B]"]
    template = message.get("template")
    if template:
        lines.append(f"Template {template.get('name')} ({template.get('language')})")
    if message.get("text"):
        lines.append(str(message["text"]))
    media = message.get("media") or {}
    if media and (media.get("filename") or media.get("mime_type")):
        label = media.get("filename") or media.get("mime_type")
        lines.append(f"Attachment: {label}" + (f" {media_link(media)}" if media_link(media) else ""))
    return "\n".join(lines)


# -- from the CRM --------------------------------------------------------------------------
def conversation_of(entity: dict[str, Any]) -> int | None:
    """The hub conversation a deal/lead was created for (ORIGIN_ID), if ours."""
    if entity.get("ORIGINATOR_ID") != ORIGINATOR:
        return None
    origin = str(entity.get("ORIGIN_ID") or "")
    return int(origin) if origin.isdigit() else None


def stage_report(entity: dict[str, Any], conversation_id: int) -> ReportDealStage:
    """A deal's stage for the analytics connectors: Bitrix24's stage semantics say the
    outcome (S success = won, F failure = lost, P in progress), whatever the stage's id;
    once per entry into the stage (MOVED_TIME), however often ONCRMDEALUPDATE fires."""
    semantic = str(entity.get("STAGE_SEMANTIC_ID") or "P").upper()
    outcome = "won" if semantic == "S" else "lost" if semantic == "F" else "open"
    deal_id, stage = str(entity.get("ID") or ""), stage_of(entity, "deal")
    return ReportDealStage(
        deal_id=deal_id, stage=stage, outcome=outcome, conversation_id=conversation_id,
        pipeline=str(entity.get("CATEGORY_ID") or "0"),
        amount=str(entity["OPPORTUNITY"]) if entity.get("OPPORTUNITY") not in (None, "") else None,
        currency=str(entity.get("CURRENCY_ID") or "") or None,
        idempotency_key=f"bitrix24-stage:{deal_id}:{stage}:{entity.get('MOVED_TIME') or ''}")


def stage_of(entity: dict[str, Any], kind: str) -> str:
    return str(entity.get("STAGE_ID" if kind == "deal" else "STATUS_ID") or "")


def template_variables(rule: rules.StageRule, entity: dict[str, Any], contact: dict[str, Any] | None) -> list[str]:
    values = []
    for source, name in rule.variables:
        row = (contact or {}) if source == "contact" else entity
        value = row.get(name)
        if isinstance(value, list):  # multifields such as PHONE
            value = value[0].get("VALUE") if value and isinstance(value[0], dict) else ""
        values.append("" if value is None else str(value))
    return values


# SLA breaches become a to-do (crm.activity.todo.add) on the deal or lead.
TODO_OWNER_TYPE = {"deal": 2, "lead": 1}
TASK_DUE = timedelta(minutes=30)
SLA_TARGETS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}


def task_marker(event_id: str) -> str:
    """Ends every SLA to-do's text: a retry recognises the one an earlier try wrote."""
    return f"[hub:sla:{event_id}]"


def task_description(data: dict[str, Any], event_id: str) -> str:
    """The to-do for a breached SLA clock: who waits, for what, since when."""
    contact = data.get("contact") or {}
    team = (data.get("team") or {}).get("name") or "the team"
    target = SLA_TARGETS.get(str(data.get("target")), str(data.get("target") or "response"))
    minutes = round((data.get("target_seconds") or 0) / 60)
    elapsed = round((data.get("elapsed_seconds") or 0) / 60)
    lines = [f"WhatsApp: {display_name(contact)} is waiting. The {target} target of {team} "
             f"({minutes} min) was missed: {elapsed} min in working hours since {_stamp(data.get('clock_started_at'))}."]
    moved = data.get("reassigned_to") or {}
    if moved.get("name") or moved.get("email"):
        lines.append(f"Handed to {moved.get('name') or moved.get('email')}.")
    lines.append(task_marker(event_id))
    return "\n".join(lines)


def task_responsible(data: dict[str, Any], options: Options) -> int | None:
    """The operator now holding the chat (after a reassignment, the new one)."""
    return assigned_user(data.get("reassigned_to") or data.get("assignee"), options)
