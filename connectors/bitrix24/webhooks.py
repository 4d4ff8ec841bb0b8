"""Events from Bitrix24 (event.bind / outbound webhooks) -> template commands.

Bitrix24 POSTs form-encoded bodies such as
    event=ONCRMDEALUPDATE&data[FIELDS][ID]=759&ts=1736405807&auth[application_token]=...
carrying only the ID, so the handler reads the deal and its contact (one batch request,
the contact through a $result reference) and matches the stage against the rules.
ONCRMDEALUPDATE fires on every edit: a rule fires once per entry into a stage, keyed on
the deal's MOVED_TIME (when it last changed stage).
"""
from __future__ import annotations

import uuid
from typing import Any

from connectors.base import InboundRequest, LinkStore, SendTemplate, WebhookRejected
from connectors.bitrix24 import mapping, phpquery
from connectors.bitrix24.errors import Bitrix24Error
from connectors.bitrix24.mapping import Options
from hub.security import constant_time_equal

ENTITY_EVENTS = {
    "ONCRMDEALUPDATE": "deal", "ONCRMDEALADD": "deal",
    "ONCRMLEADUPDATE": "lead", "ONCRMLEADADD": "lead",
}
RULE_FIRED = "bitrix24.stage_rule"


def parse_body(request: InboundRequest) -> dict[str, Any]:
    if request.form:
        return phpquery.parse_pairs([(str(k), str(v)) for k, v in request.form.items()])
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "the body is not UTF-8 form data") from None
    return phpquery.parse_query(text)


def authenticate(body: dict[str, Any], application_token: str) -> None:
    if not application_token:
        raise WebhookRejected(403, "this connector has no application token configured, so it cannot "
                                   "verify Bitrix24 events; set it in the connector settings")
    auth = body.get("auth")
    given = str(auth.get("application_token") or "") if isinstance(auth, dict) else ""
    if not given or not constant_time_equal(given, application_token):
        raise WebhookRejected(401, "auth[application_token] is missing or does not match")


def commands_for(body: dict[str, Any], *, client: Any, links: LinkStore, options: Options) -> list[SendTemplate]:
    event = str(body.get("event") or "").upper()
    kind = ENTITY_EVENTS.get(event)
    if kind is None:
        return []
    rules = [r for r in options.stage_rules if r.applies_to(kind, options.target)]
    if not rules:
        return []
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    fields = data.get("FIELDS") if isinstance(data.get("FIELDS"), dict) else {}
    entity_id = str(fields.get("ID") or "")
    if not entity_id.isdigit():
        raise WebhookRejected(400, f"{event} without data[FIELDS][ID]")
    return commands_for_entity(kind, entity_id, rules, client=client, links=links)


def commands_for_entity(kind: str, entity_id: str, rules: list[Any], *, client: Any,
                        links: LinkStore) -> list[SendTemplate]:
    """Read the deal (lead) and its contact; the rules matching its stage, each once per
    entry into the stage. WebhookRejected(503) when Bitrix24 cannot be read."""
    try:
        answer = client.batch([
            ("entity", f"crm.{kind}.get", {"id": int(entity_id)}),
            ("contact", "crm.contact.get", {"id": "$result[entity][CONTACT_ID]"}),
        ])
    except Bitrix24Error as exc:
        raise WebhookRejected(503, f"could not read {kind} {entity_id} from Bitrix24: {exc.summary()}") from None
    entity = answer.results.get("entity")
    if not isinstance(entity, dict):
        err = answer.errors.get("entity")
        if err is not None and err.code in ("NOT_FOUND", "") and "not found" in err.description.lower():
            return []  # deleted since the event was queued
        raise WebhookRejected(503, f"could not read {kind} {entity_id}: {err.summary() if err else 'no answer'}")
    contact = answer.results.get("contact") if isinstance(answer.results.get("contact"), dict) else None
    stage = mapping.stage_of(entity, kind)
    matching = [r for r in rules if r.stage == stage]
    if not matching:
        return []
    phones = mapping.phones_of(contact) if contact else []
    conversation_id = mapping.conversation_of(entity)
    if not phones and conversation_id is None:
        return []
    moved = str(entity.get("MOVED_TIME") or "")
    nonce = uuid.uuid4().hex
    commands = []
    for rule in matching:
        key = f"{kind}:{entity_id}:{stage}:{moved}:{rule.template}"
        if links.put(RULE_FIRED, key, "fired", nonce) != nonce:
            continue  # this entry into the stage already sent its template
        commands.append(SendTemplate(
            template=rule.template,
            language=rule.language,
            variables=mapping.template_variables(rule, entity, contact),
            conversation_id=conversation_id,
            phone=phones[0] if phones else None,
            reason=f"Bitrix24 {kind} {entity_id} entered stage {stage}",
        ))
    return commands


def moved_since(kind: str, since: str, stages: list[str], *, client: Any) -> list[str]:
    """IDs of the deals (leads) that entered one of `stages` at or after `since` (ISO
    time): crm.<kind>.list filtered on MOVED_TIME, 50 a page, `next` as the next start."""
    stage_field = "STAGE_ID" if kind == "deal" else "STATUS_ID"
    ids: list[str] = []
    start: Any = 0
    while True:
        try:
            envelope = client.request(f"crm.{kind}.list", {
                "filter": {">=MOVED_TIME": since, stage_field: stages}, "select": ["ID"],
                "order": {"ID": "ASC"}, "start": start})
        except Bitrix24Error as exc:
            raise WebhookRejected(503, f"could not list moved {kind}s: {exc.summary()}") from None
        ids += [str(row.get("ID")) for row in envelope.get("result") or [] if str(row.get("ID") or "").isdigit()]
        start = envelope.get("next")
        if not start:
            return ids


def pulled_commands(since: str, *, client: Any, links: LinkStore, options: Options) -> list[SendTemplate]:
    """What the stage rules ask for deals (leads) that moved since then: the same commands,
    under the same once-per-entry keys, as their ONCRM*UPDATE events give."""
    commands: list[SendTemplate] = []
    for kind in ("deal", "lead"):
        rules = [r for r in options.stage_rules if r.applies_to(kind, options.target)]
        if not rules:
            continue
        for entity_id in moved_since(kind, since, sorted({r.stage for r in rules}), client=client):
            commands += commands_for_entity(kind, entity_id, rules, client=client, links=links)
    return commands

