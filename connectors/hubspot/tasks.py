"""sla.breached -> one HubSpot task on the conversation's deal, exactly once.

Tasks have no unique-value property to make a repeated create answer 409, so the pattern
of the communications is used: before each batch create an intent link is stored per
breach (hub event id -> deal); a breach with an intent but no task link may already have
its task, and the deal's tasks are read back and matched by the event's marker in the
body (mapping.task_marker) before anything is written again. The task link (event id ->
task id) is stored the moment HubSpot answers, so a replay is a no-op.

The deal is ensured by the wave like for every other event: a breach of a conversation
HubSpot has no deal for yet creates the deal (and contact) first, as amoCRM does.
"""
from __future__ import annotations

import logging

from connectors.hubspot import mapping
from connectors.hubspot.errors import HubSpotError, Unavailable
from connectors.hubspot.wave import Entry, Item, Wave

log = logging.getLogger(__name__)

SLA_EVENT = "sla.breached"
TASK_LINK = "sla_task"                # hub event id -> HubSpot task id
TASK_INTENT = "hubspot_task_intent"   # hub event id -> deal id, written before the create
RECOVER_PROPERTIES = ["hs_task_body", "hs_timestamp"]


def create_tasks(sync: Wave, items: list[Item]) -> None:
    wanted = [i for i in items if i.event.type == SLA_EVENT]
    if not wanted:
        return
    by_event = {str(i.event.id): i for i in wanted}
    for event_id, crm_id in sync.links.get_many(TASK_LINK, list(by_event)).items():
        by_event.pop(event_id).response["task"] = crm_id
    intents = sync.links.get_many(TASK_INTENT, list(by_event)) if by_event else {}
    if intents:
        _recover(sync, [by_event[e] for e in by_event if e in intents])
        by_event = {e: i for e, i in by_event.items() if i.outcome is None and "task" not in i.response}
    if not by_event:
        return

    def entry(item: Item) -> Entry:
        owner = sync.owners.owner_for(mapping.task_holder(item.data))
        body = mapping.task_create_input(item.data, str(item.event.id), item.event.occurred_at,
                                         str(item.deal_crm_id), item.contact_crm_id, owner)

        def done(crm_id: str) -> None:
            item.response["task"] = crm_id
        return Entry("", body["objectWriteTraceId"], body, done, item.decide,
                     link=(TASK_LINK, [str(item.event.id)], "tasks"))

    try:
        entries = [entry(i) for i in by_event.values()]
    except (Unavailable, HubSpotError) as exc:  # the owner directory could not be read
        sync._fail(list(by_event.values()), exc)
        return
    for chunk in mapping.chunks(entries):
        # Written before the request, so a lost answer leaves a trace to recover from.
        events = [e.trace.removeprefix("sla-") for e in chunk]
        sync.links.put_many(TASK_INTENT, [(e, "intent", str(by_event[e].deal_crm_id)) for e in events])
        sync._create_chunk("tasks", chunk, None)


def _recover(sync: Wave, items: list[Item]) -> None:
    """Breaches whose task an earlier attempt may have created before its answer was lost."""
    deals = sorted({str(i.deal_crm_id) for i in items})
    try:
        task_ids: dict[str, list[str]] = {}
        for chunk in mapping.chunks(deals):
            task_ids.update(sync.client.associated_ids("deals", "tasks", chunk))
        all_ids = sorted({t for ids in task_ids.values() for t in ids})
        deal_of = {t: d for d, ids in task_ids.items() for t in ids}
        found: dict[tuple[str, str], str] = {}
        for chunk in mapping.chunks(all_ids):
            records = sync.client.batch_read("tasks", chunk, RECOVER_PROPERTIES)
            for event_id, task_id in mapping.tasks_by_event(records).items():
                found.setdefault((deal_of.get(task_id, ""), event_id), task_id)
    except (Unavailable, HubSpotError) as exc:
        sync._fail(items, exc)
        return
    rows = []
    for item in items:
        task_id = found.get((str(item.deal_crm_id), str(item.event.id)))
        if task_id:
            rows.append((str(item.event.id), "tasks", task_id))
    stored = sync.links.put_many(TASK_LINK, rows) if rows else {}
    for item in items:
        task_id = stored.get(str(item.event.id))
        if task_id:
            item.response["task"] = task_id
            item.response["recovered"] = True
            log.info("hubspot: task %s of SLA breach %s was already created by an earlier attempt",
                     task_id, item.event.id)
