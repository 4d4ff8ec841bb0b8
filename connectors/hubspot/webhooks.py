"""HubSpot -> hub: webhook subscription events -> commands: deal stage changes ->
SendTemplate (and deal reports), owner changes (hubspot_owner_id) -> AssignConversation.

HubSpot POSTs a JSON array of up to 100 events to the app's target URL, signed with the
v3 signature, and retries on 5xx or timeouts. Events name only the object id and the
new value, so the deal (its pipeline, the conversation id we stored on it, the rule
variables) and its contact (the phone) are read back from HubSpot.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from connectors.base import AssignConversation, Command, LinkStore, ReportDealStage, SendTemplate
from connectors.hubspot import mapping, rules
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import HubSpotError, Unavailable
from connectors.hubspot.sync import OWNER_SEEN

log = logging.getLogger(__name__)

DEAL_OBJECT_TYPE_ID = "0-3"


class PayloadError(ValueError):
    pass


@dataclass(frozen=True)
class StageChange:
    deal_id: str
    stage: str
    event_id: str
    occurred_at: int


@dataclass(frozen=True)
class OwnerChange:
    deal_id: str
    owner_id: str  # "" when the deal was left without an owner
    occurred_at: int


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body or b"null")
    except ValueError:
        raise PayloadError("body is not JSON") from None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        raise PayloadError("body is not a list of webhook events")
    if not all(isinstance(e, dict) for e in events):
        raise PayloadError("webhook events must be objects")
    return events


def _deal_property_changes(body: bytes, name: str) -> list[dict[str, Any]]:
    out = []
    for event in _events(body):
        kind = event.get("subscriptionType")
        is_deal = kind == "deal.propertyChange" or (
            kind == "object.propertyChange" and str(event.get("objectTypeId")) == DEAL_OBJECT_TYPE_ID)
        if is_deal and event.get("propertyName") == name:
            out.append(event)
    return out


def owner_changes(body: bytes) -> list[OwnerChange]:
    """Deal owner changes (hubspot_owner_id) in a webhook body; the latest per deal."""
    latest: dict[str, OwnerChange] = {}
    for event in _deal_property_changes(body, "hubspot_owner_id"):
        if event.get("objectId") in (None, ""):
            raise PayloadError("a hubspot_owner_id change lacks objectId")
        change = OwnerChange(str(event["objectId"]), str(event.get("propertyValue") or ""),
                             int(event.get("occurredAt") or 0))
        known = latest.get(change.deal_id)
        if known is None or change.occurred_at >= known.occurred_at:
            latest[change.deal_id] = change
    return list(latest.values())


def owner_commands(changes: list[OwnerChange], client: HubSpotClient, links: LinkStore, owners: Any,
                   settings: dict[str, Any]) -> list[Command]:
    """A deal owner someone changed in HubSpot assigns the deal's chat to the operator
    of that owner. The deal is read back (its conversation, and its owner now: a retried
    or stale event names an older one); each change once, as the owner seen is remembered
    like the hub's own writes (sync.OWNER_SEEN), so the webhook HubSpot sends for the
    hub's write, and its retries, change nothing. An owner no operator maps to (or none)
    leaves the chat as it is."""
    if not changes:
        return []
    id_property = settings["deal_id_property"]
    deals: dict[str, dict[str, Any]] = {}
    for chunk in mapping.chunks(sorted({c.deal_id for c in changes})):
        for record in client.batch_read("deals", chunk, [id_property, "hubspot_owner_id"]):
            deals[str(record["id"])] = _props(record)
    current = {c.deal_id: str(deals[c.deal_id].get("hubspot_owner_id") or "") for c in changes
               if c.deal_id in deals and str(deals[c.deal_id].get(id_property) or "").isdigit()}
    seen = links.get_many(OWNER_SEEN, list(current))
    changed = {deal: owner for deal, owner in current.items() if owner and seen.get(deal) != owner}
    if not changed:
        return []
    links.set_many(OWNER_SEEN, [(deal, "owner", owner) for deal, owner in changed.items()])
    commands: list[Command] = []
    for deal, owner in changed.items():
        email = owners.email_for(owner)
        if email is None:
            log.info("HubSpot deal %s: owner %s is not a hub operator; the chat stays as it is", deal, owner)
            continue
        commands.append(AssignConversation(conversation_id=int(deals[deal][id_property]), assignee_email=email))
    return commands


def stage_changes(body: bytes) -> list[StageChange]:
    """Deal stage changes in a webhook body; the latest per deal (HubSpot may batch several)."""
    latest: dict[str, StageChange] = {}
    for event in _deal_property_changes(body, "dealstage"):
        if event.get("objectId") in (None, "") or not event.get("propertyValue"):
            raise PayloadError("a dealstage change lacks objectId or propertyValue")
        change = StageChange(str(event["objectId"]), str(event["propertyValue"]),
                             str(event.get("eventId", "")), int(event.get("occurredAt") or 0))
        known = latest.get(change.deal_id)
        if known is None or change.occurred_at >= known.occurred_at:
            latest[change.deal_id] = change
    return list(latest.values())


def _props(record: dict[str, Any] | None) -> dict[str, Any]:
    return (record or {}).get("properties") or {}


OUTCOME_PROPERTIES = ("amount", "deal_currency_code", "hs_is_closed", "hs_is_closed_won")


def stage_report(change: StageChange, deal: dict[str, Any], conversation_id: int) -> ReportDealStage:
    """A dealstage change for the analytics connectors: HubSpot's calculated
    hs_is_closed_won says won, a closed deal not won is lost, whatever the stage's id;
    keyed on HubSpot's own event (its retries and later edits change nothing)."""
    closed = str(deal.get("hs_is_closed") or "").lower() == "true"
    won = str(deal.get("hs_is_closed_won") or "").lower() == "true"
    amount = deal.get("amount")
    return ReportDealStage(
        deal_id=change.deal_id, stage=change.stage, outcome="won" if won else "lost" if closed else "open",
        conversation_id=conversation_id, pipeline=deal.get("pipeline") or None,
        amount=None if amount in (None, "") else str(amount), currency=deal.get("deal_currency_code") or None,
        idempotency_key=f"hubspot-stage:{change.deal_id}:{change.stage}:{change.occurred_at}")


def commands_for(changes: list[StageChange], stage_rules: list[rules.StageRule], client: HubSpotClient,
                 settings: dict[str, Any]) -> list[Command]:
    report = bool(settings.get("report_deal_stages"))
    wanted = changes if report else [c for c in changes if any(r.stage == c.stage for r in stage_rules)]
    if not wanted:
        return []
    deal_vars, contact_vars = rules.properties_needed(stage_rules)
    if report:
        deal_vars = set(deal_vars) | set(OUTCOME_PROPERTIES)
    id_property = settings["deal_id_property"]
    contact_id_property = settings["contact_id_property"]
    deal_ids = sorted({c.deal_id for c in wanted})
    deals: dict[str, dict[str, Any]] = {}
    contact_of: dict[str, str] = {}
    for chunk in mapping.chunks(deal_ids):
        for record in client.batch_read("deals", chunk, sorted({"dealname", "dealstage", "pipeline", id_property} | deal_vars)):
            deals[str(record["id"])] = record
        for deal_id, contact_ids in client.associated_ids("deals", "contacts", chunk).items():
            if contact_ids:
                contact_of[deal_id] = sorted(contact_ids, key=int)[0]
    contacts: dict[str, dict[str, Any]] = {}
    contact_ids = sorted(set(contact_of.values()))
    for chunk in mapping.chunks(contact_ids):
        wanted_props = sorted({"phone", "mobilephone", "firstname", "lastname", contact_id_property} | contact_vars)
        for record in client.batch_read("contacts", chunk, wanted_props):
            contacts[str(record["id"])] = record
    commands: list[Command] = []
    for change in wanted:
        deal = _props(deals.get(change.deal_id))
        if not deal:
            log.warning("HubSpot deal %s from a webhook no longer exists", change.deal_id)
            continue
        if deal.get("dealstage") != change.stage:
            continue  # a stale or retried event: the deal has moved on since
        conversation = str(deal.get(id_property) or "")
        if report and conversation.isdigit():
            commands.append(stage_report(change, deal, int(conversation)))
        contact = _props(contacts.get(contact_of.get(change.deal_id, "")))
        phone = mapping.e164(contact.get("phone")) or mapping.e164(contact.get("mobilephone"))
        wa_id = str(contact.get(contact_id_property) or "")
        if not phone and wa_id.isdigit():
            phone = mapping.e164(wa_id)
        conversation = str(deal.get(id_property) or "")
        conversation_id = int(conversation) if conversation.isdigit() else None
        if conversation_id is None and not phone:
            log.warning("HubSpot deal %s has no hub conversation and no contact phone; rule skipped", change.deal_id)
            continue
        for rule in stage_rules:
            if not rule.matches(change.stage, deal.get("pipeline")):
                continue
            commands.append(SendTemplate(
                template=rule.template,
                language=rule.language,
                variables=rules.variable_values(rule, deal, contact),
                conversation_id=conversation_id,
                phone=phone,
                reason=f"HubSpot deal {deal.get('dealname') or change.deal_id!r} entered stage {change.stage}",
            ))
    return commands


__all__ = ["PayloadError", "StageChange", "stage_changes", "commands_for", "OwnerChange", "owner_changes",
           "owner_commands", "HubSpotError", "Unavailable"]
