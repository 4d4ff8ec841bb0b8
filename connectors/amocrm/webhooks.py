"""amoCRM -> hub: its form-encoded webhooks turned into hub commands.

amoCRM signs nothing; the hub gives each connector an unguessable URL, and the body's
account[subdomain] must be this connector's account. Two webhooks are used:

- "lead status changed" (leads[status][N][...]): stage rules -> SendTemplate;
- "note added to lead" (leads[note][N][note][...]): a note starting with the reply
  prefix -> SendText to the deal's conversation;
- "responsible changed" / "lead updated" (leads[responsible|update][N][responsible_user_id]),
  with operators mapped: a responsible user someone changed in amoCRM -> AssignConversation.

amoCRM repeats a webhook it thinks failed, so each event is remembered in the link store
(lead+stage+time, note id) and a repeat yields no second command.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from connectors.amocrm import mapping, phpform, rules
from connectors.base import InboundRequest, ReportDealStage, WebhookRejected

log = logging.getLogger(__name__)

COMMON_NOTE = "4"  # note_type of a text note in webhooks
WON_STATUS, LOST_STATUS = 142, 143  # "Успешно реализовано" / "Закрыто и не реализовано", in every pipeline


@dataclass(frozen=True)
class StatusChange:
    lead_id: int
    status_id: int
    pipeline_id: int | None
    old_status_id: int | None
    modified_at: str
    lead: dict[str, Any]  # lead_view() of the webhook's own copy of the deal


@dataclass(frozen=True)
class NoteAdded:
    note_id: str
    lead_id: int
    text: str
    author: str


@dataclass(frozen=True)
class ResponsibleSeen:
    lead_id: int
    user_id: int


@dataclass(frozen=True)
class Payload:
    subdomain: str
    account_id: str
    status_changes: list[StatusChange]
    notes: list[NoteAdded]
    responsibles: list[ResponsibleSeen] = field(default_factory=list)


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _webhook_lead_view(item: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook's deal copy: custom_fields[N][id|code|values][0][value]."""
    fields_: dict[str, str] = {}
    for cf in item.get("custom_fields") or []:
        if not isinstance(cf, Mapping):
            continue
        values = cf.get("values") or []
        first = values[0] if values and isinstance(values[0], Mapping) else {}
        value = "" if first.get("value") is None else str(first.get("value"))
        if cf.get("id") is not None:
            fields_[str(cf["id"])] = value
        if cf.get("code"):
            fields_[str(cf["code"]).upper()] = value
    return {"id": _int(item.get("id")), "name": item.get("name") or "", "price": item.get("price"),
            "fields": fields_}


def _listish(node: Any) -> list[Any]:
    if isinstance(node, list):
        return node
    if isinstance(node, Mapping):
        return list(node.values())
    return []


def parse(request: InboundRequest) -> Payload:
    if request.method.upper() != "POST":
        raise WebhookRejected(405, "amoCRM webhooks are POSTed")
    try:
        data = phpform.decode(request.form) if request.form else phpform.decode(request.body)
    except phpform.FormError as exc:
        raise WebhookRejected(400, f"not an amoCRM webhook body: {exc}") from None
    account = data.get("account") if isinstance(data.get("account"), Mapping) else {}
    leads = data.get("leads") if isinstance(data.get("leads"), Mapping) else {}
    if not account or not account.get("subdomain"):
        raise WebhookRejected(400, "not an amoCRM webhook: account[subdomain] is missing")
    changes = []
    for item in _listish(leads.get("status")):
        if not isinstance(item, Mapping):
            continue
        lead_id, status_id = _int(item.get("id")), _int(item.get("status_id"))
        if lead_id is None or status_id is None:
            raise WebhookRejected(400, "leads[status] entry without id or status_id")
        changes.append(StatusChange(
            lead_id=lead_id, status_id=status_id, pipeline_id=_int(item.get("pipeline_id")),
            old_status_id=_int(item.get("old_status_id")),
            modified_at=str(item.get("last_modified") or item.get("updated_at") or ""),
            lead=_webhook_lead_view(item)))
    notes = []
    for item in _listish(leads.get("note")):
        note = item.get("note") if isinstance(item, Mapping) else None
        if not isinstance(note, Mapping):
            continue
        note_type = note.get("note_type")
        if isinstance(note_type, Mapping):
            note_type = note_type.get("")
        lead_id = _int(note.get("element_id"))
        if str(note_type) != COMMON_NOTE or lead_id is None:
            continue
        author = ""
        try:
            meta = json.loads(note.get("metadata") or "{}")
            author = ((meta.get("event_source") or {}).get("author_name")) or ""
        except (ValueError, AttributeError):
            pass
        notes.append(NoteAdded(str(note.get("id") or ""), lead_id, str(note.get("text") or ""), author))
    responsibles: dict[int, ResponsibleSeen] = {}
    for section in ("update", "responsible"):
        for item in _listish(leads.get(section)):
            if not isinstance(item, Mapping) or item.get("responsible_user_id") in (None, ""):
                continue
            lead_id, user_id = _int(item.get("id")), _int(item.get("responsible_user_id"))
            if lead_id is None or user_id is None:
                raise WebhookRejected(400, f"leads[{section}] entry without a numeric id or responsible_user_id")
            responsibles[lead_id] = ResponsibleSeen(lead_id, user_id)
    return Payload(str(account.get("subdomain")), str(account.get("id") or ""), changes, notes,
                   list(responsibles.values()))


def reply_text(text: str, prefix: str) -> str | None:
    """The message to send for a note, or None when the note is not a reply."""
    if not prefix:
        return None
    stripped = text.lstrip()
    if not stripped.startswith(prefix):
        return None
    rest = stripped[len(prefix):]
    if rest and not rest[0].isspace():
        return None  # "/wallet" is not "/wa"
    return rest.strip() or None


def matching_rules(change: StatusChange, parsed: list[rules.Rule]) -> list[rules.Rule]:
    if change.old_status_id is not None and change.old_status_id == change.status_id:
        return []
    return [r for r in parsed if r.matches(change.pipeline_id, change.status_id)]


def merge_lead(webhook_view: Mapping[str, Any], api_lead: Mapping[str, Any] | None) -> dict[str, Any]:
    if not api_lead:
        return dict(webhook_view)
    view = mapping.lead_view(api_lead)
    view["fields"] = {**webhook_view.get("fields", {}), **view["fields"]}
    return view


def stage_report(change: StatusChange, conversation_id: int, currency: str) -> ReportDealStage:
    """amoCRM's status change as the hub's deal report: 142 won, 143 lost, any other
    stage open; the budget (price) from the webhook's own copy of the deal."""
    outcome = "won" if change.status_id == WON_STATUS else "lost" if change.status_id == LOST_STATUS else "open"
    price = change.lead.get("price")
    return ReportDealStage(
        deal_id=str(change.lead_id), stage=str(change.status_id), outcome=outcome,
        conversation_id=conversation_id,
        pipeline=None if change.pipeline_id is None else str(change.pipeline_id),
        amount=None if price in (None, "") else str(price), currency=currency,
        idempotency_key=f"amocrm-stage:{change.lead_id}:{change.status_id}:{change.modified_at}")


def operator_email(user_id: int, operator_users: Mapping[str, Any]) -> str | None:
    """The hub operator mapped to an amoCRM user; None when none is, or several are."""
    emails = [str(email).lower() for email, mapped in operator_users.items() if _int(mapped) == user_id]
    return emails[0] if len(emails) == 1 else None
