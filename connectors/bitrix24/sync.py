"""One wave of hub events -> as few Bitrix24 batch requests as the work allows.

A wave holds at most one event per conversation. It runs in two phases:
  lookups  - contacts by phone (crm.duplicate.findbycomm, 20 phones a command), the
             contact's open deal when reuse is on, and - only for events an earlier,
             interrupted try may have reached the CRM with - what that try created;
  writes   - contact.add, deal/lead.add (after its contact), timeline comments (inline
             $result reference to a deal created in the same batch), updates.
Links are stored the moment Bitrix24 answers. An event whose try marker already exists
(a crash, a timeout, a lost answer) searches before it creates, so nothing is doubled.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable

from connectors.base import HubEvent, LinkStore, Outcome
from connectors.bitrix24 import mapping
from connectors.bitrix24.batching import Call, Ref, Run, execute
from connectors.bitrix24.errors import CommandError, field_named
from connectors.bitrix24.mapping import ORIGINATOR, Options
from connectors.person import as_person, reuses_open_deal

HANDLED = frozenset({
    "conversation.started", "message.received", "message.sent", "conversation.assigned",
    "conversation.closed", "lead.attributed", "sla.breached", "automation.step",
})
SLA_TASK = "sla_task"  # link: hub event id -> the to-do written for it
# link: "<deal|lead>:<id>" -> the ASSIGNED_BY_ID the hub last wrote there; an
# ONCRM*UPDATE showing another one is a change made in Bitrix24 (webhooks.py)
RESPONSIBLE = "bitrix24.responsible"
TRY_MARKER = "bitrix24.try"
CONTACT_CLAIM = "bitrix24.contact_claim"
CLAIM_SECONDS = 60
PHONES_PER_LOOKUP = 20  # crm.duplicate.findbycomm takes up to 20 values
WAIT_SECONDS = 60


@dataclass
class Item:
    event: HubEvent
    conversation: dict[str, Any]
    contact: dict[str, Any]
    message: dict[str, Any] | None
    suspect: bool = False
    errors: list[tuple[str, CommandError]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    # The contact as the event names it; `contact` is its person's (connectors.person),
    # so every channel's conversation reaches the person's Bitrix24 contact.
    channel_contact: dict[str, Any] = field(default_factory=dict)

    def reuses_open_deal(self, o: Options) -> bool:
        return reuses_open_deal(self.channel_contact, new_channel_opens_deal=o.new_channel_opens_deal,
                                usual=o.reuse == "open")

    @property
    def conv_id(self) -> str:
        return str(self.conversation["id"])

    @property
    def contact_id(self) -> str:
        return str(self.contact["id"])

    def fail(self, method: str, error: CommandError) -> None:
        self.errors.append((method, error))


def parse(event: HubEvent) -> Item | str:
    data = event.data or {}
    conversation, contact = data.get("conversation"), data.get("contact")
    if not isinstance(conversation, dict) or "id" not in conversation:
        return "event data has no conversation.id"
    if not isinstance(contact, dict) or "id" not in contact:
        return "event data has no contact.id"
    message = data.get("message") if event.type.startswith("message.") else None
    if event.type == "conversation.assigned":
        conversation = {**conversation, "assignee": data.get("assignee")}
    if event.type == "lead.attributed" and data.get("lead_source"):
        conversation = {**conversation, "lead_source": data["lead_source"]}
    return Item(event, conversation, dict(as_person(contact)), message, channel_contact=contact)


def update_fields(item: Item, o: Options) -> dict[str, Any]:
    """Changes an event makes to a deal (lead) that already exists."""
    kind = item.event.type
    if kind == "conversation.assigned":
        user = mapping.assigned_user(item.conversation.get("assignee"), o)
        return {"ASSIGNED_BY_ID": user} if user else {}
    if kind == "conversation.closed":
        return mapping.close_fields(o)
    if kind == "lead.attributed":
        fields = mapping.lead_source_fields(item.conversation.get("lead_source"), o)
        source = item.conversation.get("lead_source") or {}
        if source.get("kind") and "SOURCE_DESCRIPTION" not in dict(o.utm_mapping):
            fields["SOURCE_DESCRIPTION"] = mapping.source_description(source)
        return fields
    if kind == "automation.step":
        return mapping.automation_stage_fields(item.event.data or {}, o)
    return {}


def outcome_for(item: Item, *, now: datetime, on_auth: Callable[[str], None]) -> Outcome:
    if not item.errors:
        return Outcome.done(item.info or None)
    auth = [(m, e) for m, e in item.errors if e.kind == "auth"]
    if auth:
        method, err = auth[0]
        message = f"Bitrix24 refused the connector's credentials ({err.text()}); update the webhook URL or reconnect the app"
        on_auth(message)
        return Outcome.wait(message, retry_at=now + timedelta(seconds=WAIT_SECONDS))
    invalid = [(m, e) for m, e in item.errors if e.kind == "invalid"]
    if invalid:
        method, err = invalid[0]
        named = field_named(err.description)
        where = f" (field {named})" if named else ""
        return Outcome.dead(f"Bitrix24 refused {method}{where}: {err.text()}")
    method, err = item.errors[0]
    retry_at = max((e.retry_at for _, e in item.errors if e.retry_at), default=None)
    return Outcome.retry(f"{method}: {err.text()}", retry_at=retry_at)


@dataclass
class Plan:
    """One wave's picture, shared by its lookups and writes steps: what is linked (hub id
    -> Bitrix24 id, per kind; the batch's answers add to these), the contacts still
    unknown, and the batch calls being planned with the items each one serves."""

    options: Options
    contacts: dict[str, str]   # hub contact id -> contact
    entities: dict[str, str]   # conversation id -> deal (lead)
    messages: dict[str, str]   # message id -> timeline comment
    tasks: dict[str, str]      # sla.breached event id -> to-do
    unresolved: dict[str, list[Item]] = field(default_factory=dict)  # contact key -> items
    found: dict[str, int] = field(default_factory=dict)              # contact key -> contact found
    calls: list[Call] = field(default_factory=list)
    owners: dict[str, list[Item]] = field(default_factory=dict)      # call key -> the items it serves
    contact_ref: dict[str, Ref] = field(default_factory=dict)        # hub contact id -> its add in this batch
    entity_ref: dict[str, Ref] = field(default_factory=dict)         # conversation id -> its add in this batch
    created_now: set[str] = field(default_factory=set)               # conversations whose deal this batch adds
    # RESPONSIBLE markers: of updates, stored before the calls; of deals (leads)
    # created, stored once their ids are known
    writing: dict[str, str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)

    def wants_comment(self, item: Item) -> bool:
        return (mapping.wants_on_timeline(item.message, self.options)
                and str(item.message.get("id")) not in self.messages)

    def wants_task(self, item: Item) -> bool:
        return item.event.type == "sla.breached" and str(item.event.id) not in self.tasks

    def creates(self, item: Item) -> bool:
        """Whether the item may create something (then a try marker is written first)."""
        return (item.contact_id not in self.contacts or item.conv_id not in self.entities
                or self.wants_comment(item) or self.wants_task(item))

    def add(self, call: Call, who: list[Item]) -> None:
        self.calls.append(call)
        self.owners[call.key] = who


class WaveSync:
    def __init__(self, client: Any, links: LinkStore, options: Options, clock: Callable[[], datetime]):
        self.client = client
        self.links = links
        self.options = options
        self.clock = clock
        self.nonce = uuid.uuid4().hex
        self.requests = 0
        # Links of one answer, stored together right after it (see _store_links).
        self._answered: list[tuple[str, str, str, str, dict[str, str]]] = []

    # -- helpers -------------------------------------------------------------------------
    def _run(self, calls: list[Call], owners: dict[str, list[Item]]) -> Run:
        if not calls:
            return Run()
        run = execute(self.client, calls, on_answer=self._store_links)
        self.requests += run.requests
        methods = {c.key: c.method for c in calls}
        for key, error in run.errors.items():
            for item in owners.get(key, []):
                item.fail(methods[key], error)
        return run

    def _link_later(self, entity_type: str, hub_id: str, crm_type: str, crm_id: Any, into: dict[str, str]) -> None:
        """Queue a link for the answer being read; `into[hub_id]` gets the id linked."""
        self._answered.append((entity_type, hub_id, crm_type, str(crm_id), into))

    def _store_links(self) -> None:
        """Store the links one answer created, one transaction per entity type (one per
        link cost more time than the portal's rate leaves between requests); an existing
        link wins."""
        answered, self._answered = self._answered, []
        by_type: dict[str, list[tuple[str, str, str, str, dict[str, str]]]] = {}
        for row in answered:
            by_type.setdefault(row[0], []).append(row)
        for entity_type, rows in by_type.items():
            stored = self.links.put_many(entity_type, [(hub_id, crm_type, crm_id) for _, hub_id, crm_type, crm_id, _ in rows])
            for _, hub_id, _, crm_id, into in rows:
                into[hub_id] = stored.get(hub_id, crm_id)

    def _mark_tries(self, items: list[Item]) -> None:
        """Write a marker per event before anything is sent; one already there means an
        earlier try may have created things whose links were never stored."""
        if not items:
            return
        # One transaction for the wave: a marker per event, each in its own, cost more
        # time than the portal's rate leaves between two requests.
        stored = self.links.put_many(TRY_MARKER, [(str(i.event.id), "try", self.nonce) for i in items])
        for item in items:
            item.suspect = stored.get(str(item.event.id)) != self.nonce or item.event.attempt > 1

    def _claim_contacts(self, groups: dict[str, list[Item]]) -> set[str]:
        """Only one worker creates the contact for a phone: the keys (of `groups`, contact
        key -> its items) this worker may create, claimed in one transaction. A claim left
        by an earlier try of one of these same events is ours (the ledger never hands one
        event to two workers at once); a stranger's claim is honoured for CLAIM_SECONDS,
        after which its holder is presumed dead - the phone search having found nothing."""
        if not groups:
            return set()
        now = self.clock()
        mine = {key: f"{items[0].event.id}@{int(now.timestamp())}" for key, items in groups.items()}
        stored = self.links.put_many(CONTACT_CLAIM, [(key, "claim", value) for key, value in mine.items()])
        granted = set()
        for key, items in groups.items():
            value = stored.get(key, mine[key])
            holder, _, stamp = value.rpartition("@")
            if value == mine[key] or holder in {str(i.event.id) for i in items}:
                granted.add(key)
                continue
            try:
                if now.timestamp() - int(stamp) > CLAIM_SECONDS:
                    granted.add(key)
            except ValueError:
                granted.add(key)
        return granted

    # -- the wave ------------------------------------------------------------------------
    def run(self, events: list[HubEvent], on_auth: Callable[[str], None]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        items: list[tuple[int, Item]] = []
        for index, event in enumerate(events):
            if event.type not in HANDLED:
                outcomes[index] = Outcome.done({"skipped": f"{event.type} is not synced to Bitrix24"})
                continue
            parsed = parse(event)
            if isinstance(parsed, str):
                outcomes[index] = Outcome.dead(parsed)
            else:
                items.append((index, parsed))
        if items:
            self._sync([item for _, item in items])
            now = self.clock()
            for index, item in items:
                outcomes[index] = outcome_for(item, now=now, on_auth=on_auth)
        return [outcomes[i] for i in range(len(events))]

    def _sync(self, items: list[Item]) -> None:
        plan = self._read_links(items)
        self._mark_tries([i for i in items if plan.creates(i)])
        self._lookups(plan, items)
        self._writes(plan, items)

    # -- the wave's steps ----------------------------------------------------------------
    def _read_links(self, items: list[Item]) -> Plan:
        """What the hub already linked for these items: contacts, deals (leads), comments, to-dos."""
        return Plan(
            self.options,
            contacts=self.links.get_many("contact", sorted({i.contact_id for i in items})),
            entities=self.links.get_many(self.options.conversation_link, sorted({i.conv_id for i in items})),
            messages=self.links.get_many("message", sorted({str(i.message["id"]) for i in items
                                                            if i.message and "id" in i.message})),
            tasks=self.links.get_many(SLA_TASK, sorted({str(i.event.id) for i in items
                                                        if i.event.type == "sla.breached"})))

    def _lookups(self, plan: Plan, items: list[Item]) -> None:
        """Find in Bitrix24 what is not linked yet: contacts by phone or origin, deals
        (leads) of the contacts, and - for events an earlier try may have half-written -
        their comments and to-dos; each one found is linked at once."""
        for item in items:
            if item.contact_id not in plan.contacts:
                plan.unresolved.setdefault(mapping.contact_key(item.contact), []).append(item)
        self._find_contacts(plan.unresolved, plan.found)
        for key, group in plan.unresolved.items():
            if key in plan.found:
                for item in group:
                    plan.contacts[item.contact_id] = self.links.put("contact", item.contact_id, "contact",
                                                                    str(plan.found[key]))

        need_entity = [i for i in items if i.conv_id not in plan.entities and not i.errors]
        self._find_entities(need_entity, plan.contacts, plan.entities)

        comments_found: dict[str, str] = {}
        suspects = [i for i in items if i.suspect and plan.wants_comment(i) and i.conv_id in plan.entities
                    and not i.errors]
        self._find_comments(suspects, plan.entities, comments_found)
        for item in suspects:
            mid = str(item.message["id"])
            if mid in comments_found:
                plan.messages[mid] = self.links.put("message", mid, "timeline_comment", comments_found[mid])
        task_suspects = [i for i in items if i.suspect and plan.wants_task(i) and i.conv_id in plan.entities
                         and not i.errors]
        for event_id, activity_id in self._find_tasks(task_suspects, plan.entities).items():
            plan.tasks[event_id] = self.links.put(SLA_TASK, event_id, "activity", activity_id)

    def _writes(self, plan: Plan, items: list[Item]) -> None:
        """Create what the lookups did not find and write each event's part, in one batch run
        (calls refer to the contacts and deals created before them in the same batch)."""
        self._add_contacts(plan)
        self._add_entities(plan, items)
        for item in items:
            if not item.errors:
                self._add_event_writes(plan, item)
        self.links.set_many(RESPONSIBLE, [(key, "user", user) for key, user in plan.writing.items()
                                          if key.split(":")[1].isdigit()])
        self._run(plan.calls, plan.owners)
        self.links.set_many(RESPONSIBLE, [(key, "user", user) for key, user in plan.written.items()])
        o = self.options
        for item in items:
            if not item.errors:
                item.info = {k: v for k, v in {
                    "contact_id": plan.contacts.get(item.contact_id),
                    f"{o.target}_id": plan.entities.get(item.conv_id),
                    "comment_id": plan.messages.get(str((item.message or {}).get("id"))),
                    "task_id": plan.tasks.get(str(item.event.id)) if item.event.type == "sla.breached" else None,
                }.items() if v}

    def _add_contacts(self, plan: Plan) -> None:
        """One crm.contact.add per contact key nobody found, if this worker holds its claim."""
        to_create = {key: live for key, group in plan.unresolved.items()
                     if key not in plan.found and (live := [i for i in group if not i.errors])}
        granted = self._claim_contacts(to_create)
        for key, live in to_create.items():
            if key not in granted:
                for item in live:
                    item.fail("crm.contact.add", CommandError(
                        "busy", "another worker is creating this contact right now", "transient",
                        self.clock() + timedelta(seconds=10)))
                continue
            call_key = f"c{live[0].contact_id}"
            plan.add(Call(call_key, "crm.contact.add",
                          {"fields": mapping.contact_fields(live[0].contact, self.options),
                           "params": {"REGISTER_SONET_EVENT": "N"}},
                          on_done=partial(self._link_contacts, sorted({i.contact_id for i in live}), plan.contacts)),
                     live)
            for item in live:
                plan.contact_ref[item.contact_id] = Ref(call_key)

    def _add_entities(self, plan: Plan, items: list[Item]) -> None:
        """One deal (lead) add per conversation without one, on its contact (found or being added)."""
        o = self.options
        for item in items:
            if item.errors or item.conv_id in plan.entities or item.conv_id in plan.entity_ref:
                continue
            cid = plan.contacts.get(item.contact_id)
            contact_value: Any = int(cid) if cid else plan.contact_ref.get(item.contact_id)
            if contact_value is None:
                continue
            call_key = f"d{item.conv_id}"
            fields = mapping.entity_fields(item.conversation, item.contact, contact_value, o)
            plan.add(Call(call_key, f"crm.{o.target}.add",
                          {"fields": fields, "params": {"REGISTER_SONET_EVENT": "N"}},
                          on_done=partial(self._link_entity, plan, item.conv_id, fields.get("ASSIGNED_BY_ID"))),
                     [item])
            plan.entity_ref[item.conv_id] = Ref(call_key, inline=True)
            plan.created_now.add(item.conv_id)

    def _add_event_writes(self, plan: Plan, item: Item) -> None:
        """The event's own writes on its deal (lead): a timeline comment, an SLA to-do, an update."""
        o = self.options
        target: Any = int(plan.entities[item.conv_id]) if item.conv_id in plan.entities \
            else plan.entity_ref.get(item.conv_id)
        if target is None:
            return
        if plan.wants_comment(item):
            mid = str(item.message["id"])
            plan.add(Call(f"m{mid}", "crm.timeline.comment.add",
                          {"fields": {"ENTITY_ID": target, "ENTITY_TYPE": mapping.TIMELINE_ENTITY[o.target],
                                      "COMMENT": mapping.comment_text(item.message, item.contact)}},
                          on_done=partial(self._link_later, "message", mid, "timeline_comment", into=plan.messages)),
                     [item])
        if plan.wants_task(item):
            event_id = str(item.event.id)
            task = {"ownerTypeId": mapping.TODO_OWNER_TYPE[o.target], "ownerId": target,
                    "deadline": (item.event.occurred_at + mapping.TASK_DUE).isoformat(),
                    "description": mapping.task_description(item.event.data or {}, event_id)}
            responsible = mapping.task_responsible(item.event.data or {}, o)
            if responsible:
                task["responsibleId"] = responsible
            plan.add(Call(f"s{event_id}", "crm.activity.todo.add", task,
                          on_done=partial(self._link_task, event_id, plan.tasks)), [item])
        if item.conv_id in plan.created_now and item.event.type != "automation.step":
            return  # the new deal already carries the snapshot's assignee, source, stage
        update = update_fields(item, o)
        if update:
            if update.get("ASSIGNED_BY_ID") and o.operators:
                # Remembered before the call: an ONCRM*UPDATE read while it is on its
                # way is not taken for a change made in Bitrix24.
                plan.writing[f"{o.target}:{target}"] = str(update["ASSIGNED_BY_ID"])
            plan.add(Call(f"u{item.conv_id}", f"crm.{o.target}.update", {"id": target, "fields": update}), [item])

    # -- what an answer links ----------------------------------------------------------------
    def _link_contacts(self, hub_ids: list[str], into: dict[str, str], result: Any) -> None:
        for hid in hub_ids:
            self._link_later("contact", hid, "contact", result, into)

    def _link_entity(self, plan: Plan, conv_id: str, user: Any, result: Any) -> None:
        o = self.options
        self._link_later(o.conversation_link, conv_id, o.target, result, plan.entities)
        if user and o.operators and str(result or "").isdigit():
            plan.written[f"{o.target}:{result}"] = str(user)

    def _link_task(self, event_id: str, into: dict[str, str], result: Any) -> None:
        self._link_later(SLA_TASK, event_id, "activity", (result or {}).get("id"), into)

    # -- lookups -------------------------------------------------------------------------
    def _find_contacts(self, unresolved: dict[str, list[Item]], found: dict[str, int]) -> None:
        phones = sorted(k for k in unresolved if not k.startswith("hub:"))
        hub_only = sorted(k for k in unresolved if k.startswith("hub:"))
        calls: list[Call] = []
        owners: dict[str, list[Item]] = {}
        groups: dict[str, list[str]] = {}
        for n in range(0, len(phones), PHONES_PER_LOOKUP):
            group = phones[n:n + PHONES_PER_LOOKUP]
            key = f"p{n // PHONES_PER_LOOKUP}"
            groups[key] = group
            calls.append(Call(key, "crm.duplicate.findbycomm",
                              {"entity_type": "CONTACT", "type": "PHONE", "values": group}))
            owners[key] = [i for p in group for i in unresolved[p]]
        if hub_only:
            calls.append(Call("origin", "crm.contact.list", {
                "filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": [k[4:] for k in hub_only]},
                "select": ["ID", "ORIGIN_ID"], "order": {"ID": "ASC"}}))
            owners["origin"] = [i for k in hub_only for i in unresolved[k]]
        run = self._run(calls, owners)
        for row in run.results.get("origin") or []:
            key = f"hub:{row.get('ORIGIN_ID')}"
            if key in unresolved and key not in found:
                found[key] = int(row["ID"])
        ambiguous: dict[str, list[int]] = {}
        for key, group in groups.items():
            ids = mapping.found_contact_ids(run.results.get(key))
            if not ids:
                continue
            if len(group) == 1:
                found[group[0]] = min(ids)
            else:
                ambiguous[key] = ids
        if not ambiguous:
            return
        # Several phones in one lookup matched: read the matches' phones to tell them apart.
        calls, owners = [], {}
        for key, ids in ambiguous.items():
            calls.append(Call(f"{key}x", "crm.contact.list",
                              {"filter": {"ID": ids[:50]}, "select": ["ID", "PHONE"], "order": {"ID": "ASC"}}))
            owners[f"{key}x"] = [i for p in groups[key] for i in unresolved[p]]
        run = self._run(calls, owners)
        for key in ambiguous:
            for row in run.results.get(f"{key}x") or []:
                for phone in mapping.phones_of(row):
                    if phone in groups[key] and phone not in found:
                        found[phone] = int(row["ID"])

    def _find_entities(self, items: list[Item], contacts: dict[str, str], entities: dict[str, str]) -> None:
        o = self.options
        if not items:
            return
        link_type = o.conversation_link
        method = f"crm.{o.target}.list"
        calls: list[Call] = []
        owners: dict[str, list[Item]] = {}
        suspects = [i for i in items if i.suspect]
        if suspects:
            calls.append(Call("mine", method, {
                "filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": sorted({i.conv_id for i in suspects})},
                "select": ["ID", "ORIGIN_ID"], "order": {"ID": "ASC"}}))
            owners["mine"] = suspects
        if any(item.reuses_open_deal(o) for item in items):
            by_contact: dict[str, list[Item]] = {}
            for item in items:
                cid = contacts.get(item.contact_id)
                if cid and item.reuses_open_deal(o):
                    by_contact.setdefault(cid, []).append(item)
            for cid, group in by_contact.items():
                calls.append(Call(f"open{cid}", method, {
                    "filter": mapping.open_filter(int(cid), o), "select": ["ID"], "order": {"ID": "DESC"}}))
                owners[f"open{cid}"] = group
        run = self._run(calls, owners)
        for row in run.results.get("mine") or []:
            conv = str(row.get("ORIGIN_ID"))
            if conv not in entities and any(i.conv_id == conv for i in suspects):
                entities[conv] = self.links.put(link_type, conv, o.target, str(row["ID"]))
        for item in items:
            if item.conv_id in entities or item.errors:
                continue
            cid = contacts.get(item.contact_id)
            rows = run.results.get(f"open{cid}") or []
            if rows:
                entities[item.conv_id] = self.links.put(link_type, item.conv_id, o.target, str(rows[0]["ID"]))

    def _find_tasks(self, items: list[Item], entities: dict[str, str]) -> dict[str, str]:
        """The to-dos an interrupted earlier try wrote (their text ends with the event's
        marker): event id -> activity id."""
        if not items:
            return {}
        o = self.options
        calls: list[Call] = []
        owners: dict[str, list[Item]] = {}
        for item in items:
            key = f"a{entities[item.conv_id]}"
            if key not in owners:
                calls.append(Call(key, "crm.activity.list", {
                    "filter": {"OWNER_TYPE_ID": mapping.TODO_OWNER_TYPE[o.target],
                               "OWNER_ID": int(entities[item.conv_id]), "PROVIDER_ID": "CRM_TODO"},
                    "select": ["ID", "DESCRIPTION"], "order": {"ID": "DESC"}}))
                owners[key] = []
            owners[key].append(item)
        run = self._run(calls, owners)
        found = {}
        for item in items:
            marker = mapping.task_marker(str(item.event.id))
            rows = run.results.get(f"a{entities[item.conv_id]}") or []
            match = next((r for r in rows if str(r.get("DESCRIPTION") or "").endswith(marker)), None)
            if match:
                found[str(item.event.id)] = str(match["ID"])
        return found

    def _find_comments(self, items: list[Item], entities: dict[str, str], found: dict[str, str]) -> None:
        if not items:
            return
        o = self.options
        calls: list[Call] = []
        owners: dict[str, list[Item]] = {}
        for item in items:
            eid = entities[item.conv_id]
            key = f"t{eid}"
            if key not in owners:
                calls.append(Call(key, "crm.timeline.comment.list", {
                    "filter": {"ENTITY_ID": int(eid), "ENTITY_TYPE": mapping.TIMELINE_ENTITY[o.target]},
                    "select": ["ID", "COMMENT"], "order": {"ID": "DESC"}}))
                owners[key] = []
            owners[key].append(item)
        run = self._run(calls, owners)
        for item in items:
            rows = run.results.get(f"t{entities[item.conv_id]}") or []
            text = mapping.comment_text(item.message, item.contact)
            match = next((r for r in rows if r.get("COMMENT") == text), None)
            if match:
                found[str(item.message["id"])] = str(match["ID"])
