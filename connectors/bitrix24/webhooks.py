"""Events from Bitrix24 (event.bind / outbound webhooks) -> template and assignment commands.

Bitrix24 POSTs form-encoded bodies such as
    event=ONCRMDEALUPDATE&data[FIELDS][ID]=759&ts=1736405807&auth[application_token]=...
carrying only the ID, so the handler reads the deal and its contact (one batch request,
the contact through a $result reference) and matches the stage against the rules.
ONCRMDEALUPDATE fires on every edit: a rule fires once per entry into a stage, keyed on
the deal's MOVED_TIME (when it last changed stage). With an operator map, a responsible
user (ASSIGNED_BY_ID) someone changed in Bitrix24 assigns the chat to the mapped operator.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

from connectors.base import AssignConversation, Command, InboundRequest, LinkStore, SendTemplate, WebhookRejected
from connectors.bitrix24 import mapping, phpquery
from connectors.bitrix24.errors import Bitrix24Error
from connectors.bitrix24.mapping import Options
from hub.shared.security import constant_time_equal

ENTITY_EVENTS = {
    "ONCRMDEALUPDATE": "deal", "ONCRMDEALADD": "deal",
    "ONCRMLEADUPDATE": "lead", "ONCRMLEADADD": "lead",
}
RULE_FIRED = "bitrix24.stage_rule"
RESPONSIBLE = "bitrix24.responsible"  # the same markers as sync.RESPONSIBLE

log = logging.getLogger(__name__)


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


def commands_for(body: dict[str, Any], *, client: Any, links: LinkStore, options: Options) -> list[Command]:
    event = str(body.get("event") or "").upper()
    kind = ENTITY_EVENTS.get(event)
    if kind is None:
        return []
    rules = [r for r in options.stage_rules if r.applies_to(kind, options.target)]
    # A responsible user changed in Bitrix24 follows into the hub (only edits: a deal
    # the hub adds carries the hub's own assignee), when operators are mapped.
    follow = bool(options.operators) and kind == options.target and event.endswith("UPDATE")
    report = options.report_stages and kind == "deal"
    if not rules and not follow and not report:
        return []
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    fields = data.get("FIELDS") if isinstance(data.get("FIELDS"), dict) else {}
    entity_id = str(fields.get("ID") or "")
    if not entity_id.isdigit():
        raise WebhookRejected(400, f"{event} without data[FIELDS][ID]")
    return commands_for_entity(kind, entity_id, rules, client=client, links=links,
                               operators=options.operators if follow else (), report=report)


def commands_for_entity(kind: str, entity_id: str, rules: list[Any], *, client: Any,
                        links: LinkStore, operators: tuple[tuple[str, int], ...] = (),
                        report: bool = False) -> list[Command]:
    """Read the deal (lead) and its contact; the rules matching its stage, each once per
    entry into the stage; with `operators`, an assignment when its responsible user is
    not the one the hub last wrote; with `report`, the deal's stage for the analytics
    connectors. WebhookRejected(503) when Bitrix24 cannot be read."""
    calls = [("entity", f"crm.{kind}.get", {"id": int(entity_id)})]
    if rules:
        calls.append(("contact", "crm.contact.get", {"id": "$result[entity][CONTACT_ID]"}))
    try:
        answer = client.batch(calls)
    except Bitrix24Error as exc:
        raise WebhookRejected(503, f"could not read {kind} {entity_id} from Bitrix24: {exc.summary()}") from None
    entity = answer.results.get("entity")
    if not isinstance(entity, dict):
        err = answer.errors.get("entity")
        if err is not None and err.code in ("NOT_FOUND", "") and "not found" in err.description.lower():
            return []  # deleted since the event was queued
        raise WebhookRejected(503, f"could not read {kind} {entity_id}: {err.summary() if err else 'no answer'}")
    commands: list[Command] = []
    if operators:
        commands += responsible_changed(kind, entity_id, entity, links=links, operators=operators)
    if report and kind == "deal" and mapping.conversation_of(entity) is not None:
        commands.append(mapping.stage_report(entity, mapping.conversation_of(entity)))  # type: ignore[arg-type]
    if not rules:
        return commands
    contact = answer.results.get("contact") if isinstance(answer.results.get("contact"), dict) else None
    stage = mapping.stage_of(entity, kind)
    matching = [r for r in rules if r.stage == stage]
    if not matching:
        return commands
    phones = mapping.phones_of(contact) if contact else []
    conversation_id = mapping.conversation_of(entity)
    if not phones and conversation_id is None:
        return commands
    moved = str(entity.get("MOVED_TIME") or "")
    nonce = uuid.uuid4().hex
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


def responsible_changed(kind: str, entity_id: str, entity: dict[str, Any], *, links: LinkStore,
                        operators: tuple[tuple[str, int], ...]) -> list[AssignConversation]:
    """The hub's conversation of a deal (lead) whose ASSIGNED_BY_ID someone changed in
    Bitrix24, assigned to the operator mapped to that user. Each change once: the value
    seen is remembered like the hub's own writes, so the event Bitrix24 fires for the
    hub's write, and every later edit of other fields, change nothing."""
    conversation_id = mapping.conversation_of(entity)
    user = str(entity.get("ASSIGNED_BY_ID") or "")
    if conversation_id is None or not user.isdigit():
        return []
    key = f"{kind}:{entity_id}"
    if links.get(RESPONSIBLE, key) == user:
        return []
    links.set_many(RESPONSIBLE, [(key, "user", user)])
    email = mapping.operator_email(int(user), operators)
    if email is None:
        log.info("Bitrix24 %s %s: responsible user %s is not mapped to a hub operator; the chat stays as it is",
                 kind, entity_id, user)
        return []
    return [AssignConversation(conversation_id=conversation_id, assignee_email=email)]


def moved_since(kind: str, since: str, stages: list[str] | None, *, client: Any) -> list[str]:
    """IDs of the deals (leads) that entered one of `stages` (None: any stage) at or after
    `since` (ISO time): crm.<kind>.list filtered on MOVED_TIME, 50 a page, `next` as the
    next start."""
    stage_field = "STAGE_ID" if kind == "deal" else "STATUS_ID"
    ids: list[str] = []
    start: Any = 0
    filter_: dict[str, Any] = {">=MOVED_TIME": since}
    if stages is not None:
        filter_[stage_field] = stages
    while True:
        try:
            envelope = client.request(f"crm.{kind}.list", {
                "filter": filter_, "select": ["ID"],
                "order": {"ID": "ASC"}, "start": start})
        except Bitrix24Error as exc:
            raise WebhookRejected(503, f"could not list moved {kind}s: {exc.summary()}") from None
        ids += [str(row.get("ID")) for row in envelope.get("result") or [] if str(row.get("ID") or "").isdigit()]
        start = envelope.get("next")
        if not start:
            return ids


def pulled_commands(since: str, *, client: Any, links: LinkStore, options: Options) -> list[Command]:
    """What the stage rules ask for deals (leads) that moved since then: the same commands,
    under the same once-per-entry keys, as their ONCRM*UPDATE events give."""
    commands: list[Command] = []
    for kind in ("deal", "lead"):
        rules = [r for r in options.stage_rules if r.applies_to(kind, options.target)]
        report = options.report_stages and kind == "deal"
        if not rules and not report:
            continue
        stages = None if report else sorted({r.stage for r in rules})
        for entity_id in moved_since(kind, since, stages, client=client):
            commands += commands_for_entity(kind, entity_id, rules, client=client, links=links, report=report)
    return commands

