"""One deliver() wave: hub events -> as few amoCRM requests as the API's batches allow.

A wave holds at most one event per conversation (the worker guarantees it), so all of
them can share requests: one leads/complex per 50 new deals, one notes request per 50
messages, one PATCH per 50 deal updates. Each event gets its own Outcome.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from datetime import datetime, timezone

from connectors import automation_notes, contact_updates
from connectors.amocrm import intents, mapping, merges, recovery
from connectors.amocrm.contact_updates import ContactUpdates
from connectors.amocrm.pipelines import Pipelines
from connectors.amocrm.client import AmoClient
from connectors.amocrm.errors import AmoError, Transient, ValidationFailed
from connectors.amocrm.leads import RESPONSIBLE, LeadEnsurer, Wanted
from connectors.base import HubEvent, LinkStore, Outcome

log = logging.getLogger(__name__)

NOTES_BATCH = 50
PATCH_BATCH = 50
CONVERSATION_TYPES = frozenset({
    "conversation.started", "message.received", "message.sent", "conversation.assigned",
    "conversation.closed", "lead.attributed", "sla.breached", "automation.step",
})
HANDLED = CONVERSATION_TYPES | {"contact.opted_out", contact_updates.TYPE} | merges.TYPES


@dataclass
class _Note:
    index: int
    body: dict[str, Any]


class WaveSync:
    def __init__(self, client: AmoClient, links: LinkStore, settings: Mapping[str, Any],
                 now: Callable[[], float], failure: Callable[[AmoError], Outcome]):
        self.client = client
        self.links = links
        self.settings = settings
        self.now = now
        self.failure = failure
        self.pipelines = Pipelines(client.base_url, lambda: client.get("/api/v4/leads/pipelines"), now)

    def run(self, batch: list[HubEvent]) -> list[Outcome]:
        out: list[Outcome | None] = [None] * len(batch)
        wanted: list[tuple[int, Wanted]] = []
        opted_out: list[tuple[int, Mapping[str, Any]]] = []
        person_changes: list[int] = []
        contact_changes: list[int] = []
        for i, event in enumerate(batch):
            try:
                if event.type in CONVERSATION_TYPES:
                    w = Wanted.of(mapping.require(event.data, "conversation"), mapping.require(event.data, "contact"))
                    w.validate()
                    wanted.append((i, w))
                elif event.type in merges.TYPES:
                    person_changes.append(i)
                elif event.type == contact_updates.TYPE:
                    contact_changes.append(i)
                elif event.type == "contact.opted_out":
                    contact = mapping.require(event.data, "contact")
                    mapping.contact_key(contact)
                    opted_out.append((i, contact))
                else:
                    out[i] = Outcome.done({"skipped": f"{event.type} is not synced to amoCRM"})
            except mapping.PayloadError as exc:
                out[i] = Outcome.dead(f"{event.type} {event.id}: {exc}")
        # links first: a conversation event of the same wave already finds the contact they name
        person_notes = self._person_changes(batch, person_changes, out)
        updates = ContactUpdates(self.client, self.links, self.settings,
                                 clock=lambda: datetime.fromtimestamp(self.now(), timezone.utc), failure=self.failure)
        for i in contact_changes:
            out[i] = updates.apply(batch[i])
        ensurer = LeadEnsurer(self.client, self.links, self.settings, self.now)
        unique = {w.conv_id: w for _, w in wanted}
        ensured = ensurer.ensure(list(unique.values()))

        notes: list[_Note] = []
        tasks: list[_Note] = []
        patches: dict[int, tuple[dict[str, Any], list[int]]] = {}
        for i, w in wanted:
            event = batch[i]
            if w.conv_id in ensured.failed:
                out[i] = self.failure(ensured.failed[w.conv_id])
                continue
            lead_id = ensured.leads[w.conv_id]
            info = {"lead_id": lead_id, "created": w.conv_id in ensured.created}
            try:
                action = self._action(event, w, lead_id)
            except AmoError as exc:  # reading the pipelines for a stage named
                out[i] = self.failure(exc)
                continue
            if action is None:
                out[i] = Outcome.done(info)
            elif action[0] == "note":
                notes.append(_Note(i, action[1]))
            elif action[0] == "task":
                tasks.append(_Note(i, action[1]))
            elif action[0] == "patch":
                body, indices = patches.setdefault(lead_id, ({"id": lead_id}, []))
                body.update(action[1])
                indices.append(i)
            else:
                out[i] = Outcome.done({**info, "skipped": action[1]})
        self._send_notes("/api/v4/leads/notes", notes, out)
        self._send_tasks(tasks, out)
        self._send_patches(patches, out)
        self._opt_outs(batch, opted_out, out, person_notes)
        return [o if o is not None else Outcome.retry("not handled (connector bug)") for o in out]

    # -- per event --------------------------------------------------------------------------
    def _action(self, event: HubEvent, w: Wanted, lead_id: int) -> tuple[str, Any] | None:
        data = event.data
        if event.type in ("message.received", "message.sent"):
            message = mapping.require(data, "message")
            mapping.require(message, "id")
            if not mapping.wants_note(message, self.settings.get("timeline_messages", "all")):
                return ("skip", "message not shown on the timeline (settings)")
            return ("note", mapping.note_body(lead_id, message, w.contact,
                                              self.settings.get("note_type") or "common",
                                              mapping.channel_label(w.conversation)))
        if event.type == "conversation.assigned":
            user = mapping.responsible_user({"assignee": data.get("assignee")},
                                            {**self.settings, "responsible_user_id": None})
            if user is None:
                who = (data.get("assignee") or {}).get("email") or "nobody"
                return ("skip", f"no amoCRM user mapped for {who}")
            return ("patch", {"responsible_user_id": user})
        if event.type == "conversation.closed":
            status = self.settings.get("close_status_id")
            if not status:
                return ("skip", "no closing stage configured")
            body = mapping.close_patch(lead_id, status, self.settings.get("pipeline_id"))
            body.pop("id")
            return ("patch", body)
        if event.type == "lead.attributed":
            body = mapping.attribution_patch(lead_id, data.get("lead_source"),
                                             self.settings.get("source_fields") or {})
            if body is None:
                return ("skip", "no mapped lead source fields")
            body.pop("id")
            return ("patch", body)
        if event.type == "automation.step":
            if data.get("action") == "deal_fields":
                return ("note", mapping.automation_note_body(lead_id, data, event.id))
            move = automation_notes.stage_move(data)
            if move is not None:
                patch = self.pipelines.stage_patch(*move, self.settings.get("pipeline_id"))
                return ("patch", patch) if isinstance(patch, dict) else ("skip", patch)
            return ("skip", f"automation action {data.get('action')!r} is not synced")
        if event.type == "sla.breached":
            return ("task", mapping.task_body(lead_id, data, event.id, event.occurred_at,
                                              {**self.settings, "responsible_user_id": None}))
        return None  # conversation.started: the deal exists now

    # -- requests ------------------------------------------------------------------------
    def _send_notes(self, path: str, notes: list[_Note], out: list[Outcome | None]) -> None:
        for start in range(0, len(notes), NOTES_BATCH):
            chunk = {n.body["request_id"]: n for n in notes[start:start + NOTES_BATCH]}
            declared = intents.declare(self.links, intents.NOTE, list(chunk), self.now())
            suspects = [chunk[k].body for k, it in declared.items() if it.earlier]
            if suspects:
                try:
                    already = recovery.find_created_notes(self.client, suspects, declared, path)
                except AmoError as exc:
                    for body in suspects:
                        out[chunk.pop(body["request_id"]).index] = self.failure(exc)
                    already = set()
                for rid in already:
                    n = chunk.pop(rid)
                    out[n.index] = Outcome.done({"lead_id": n.body["entity_id"], "note": "already in amoCRM"})
            self._post_notes(path, chunk, out)

    def _post_notes(self, path: str, chunk: dict[str, _Note], out: list[Outcome | None]) -> None:
        while chunk:
            try:
                answer = self.client.post(path, [n.body for n in chunk.values()])
            except ValidationFailed as exc:
                bad = [rid for rid in exc.errors if rid in chunk]
                if not bad:
                    for n in chunk.values():
                        out[n.index] = self.failure(exc)
                    return
                for rid in bad:
                    out[chunk.pop(rid).index] = Outcome.dead(
                        f"amoCRM rejected the note of message {rid}: " + "; ".join(exc.errors[rid]),
                        response=exc.response)
                continue
            except AmoError as exc:
                for n in chunk.values():
                    out[n.index] = self.failure(exc)
                return
            created = mapping.by_request_id(answer, "notes")
            for rid, n in chunk.items():
                item = created.get(rid)
                if item is None:
                    out[n.index] = self.failure(Transient(f"{path} answered without note {rid}", ambiguous=True))
                else:
                    out[n.index] = Outcome.done({"lead_id": n.body["entity_id"], "note_id": item.get("id")})
            return

    def _send_tasks(self, tasks: list[_Note], out: list[Outcome | None]) -> None:
        """One task per breach: an intent first, so a retry after a lost answer looks
        for the task (same text, same deal) before writing another."""
        for start in range(0, len(tasks), NOTES_BATCH):
            chunk = {t.body["request_id"]: t for t in tasks[start:start + NOTES_BATCH]}
            declared = intents.declare(self.links, intents.TASK, list(chunk), self.now())
            suspects = [chunk[k].body for k, it in declared.items() if it.earlier]
            if suspects:
                try:
                    already = recovery.find_created_tasks(self.client, suspects, declared)
                except AmoError as exc:
                    for body in suspects:
                        out[chunk.pop(body["request_id"]).index] = self.failure(exc)
                    already = set()
                for rid in already:
                    t = chunk.pop(rid)
                    out[t.index] = Outcome.done({"lead_id": t.body["entity_id"], "task": "already in amoCRM"})
            while chunk:
                try:
                    answer = self.client.post("/api/v4/tasks", [t.body for t in chunk.values()])
                except ValidationFailed as exc:
                    bad = [rid for rid in exc.errors if rid in chunk]
                    if not bad:
                        for t in chunk.values():
                            out[t.index] = self.failure(exc)
                        break
                    for rid in bad:
                        out[chunk.pop(rid).index] = Outcome.dead(
                            f"amoCRM rejected the task of {rid}: " + "; ".join(exc.errors[rid]), response=exc.response)
                    continue
                except AmoError as exc:
                    for t in chunk.values():
                        out[t.index] = self.failure(exc)
                    break
                created = mapping.by_request_id(answer, "tasks")
                for rid, t in chunk.items():
                    item = created.get(rid)
                    out[t.index] = (Outcome.done({"lead_id": t.body["entity_id"], "task_id": item.get("id")})
                                    if item is not None else
                                    self.failure(Transient(f"/api/v4/tasks answered without task {rid}", ambiguous=True)))
                break

    def _send_patches(self, patches: dict[int, tuple[dict[str, Any], list[int]]],
                      out: list[Outcome | None]) -> None:
        items = list(patches.values())
        for start in range(0, len(items), PATCH_BATCH):
            chunk = {str(body["id"]): (dict(body, request_id=str(body["id"])), idx)
                     for body, idx in items[start:start + PATCH_BATCH]}
            if self.settings.get("operator_users"):
                # Remembered before the call: the webhook amoCRM fires for this very write
                # (or reads while it is on its way) is not taken for a manager's change.
                self.links.set_many(RESPONSIBLE, [(rid, "user", str(body["responsible_user_id"]))
                                                  for rid, (body, _) in chunk.items()
                                                  if body.get("responsible_user_id")])
            while chunk:
                try:
                    self.client.patch("/api/v4/leads", [body for body, _ in chunk.values()])
                except ValidationFailed as exc:
                    bad = [rid for rid in exc.errors if rid in chunk]
                    if not bad:
                        for _, idx in chunk.values():
                            for i in idx:
                                out[i] = self.failure(exc)
                        break
                    for rid in bad:
                        for i in chunk.pop(rid)[1]:
                            out[i] = Outcome.dead(f"amoCRM rejected the update of deal {rid}: "
                                                  + "; ".join(exc.errors[rid]), response=exc.response)
                    continue
                except AmoError as exc:
                    for _, idx in chunk.values():
                        for i in idx:
                            out[i] = self.failure(exc)
                    break
                for body, idx in chunk.values():
                    for i in idx:
                        out[i] = Outcome.done({"lead_id": body["id"], "updated": sorted(
                            k for k in body if k not in ("id", "request_id"))})
                break

    def _person_changes(self, batch: list[HubEvent], indices: list[int], out: list[Outcome | None]) -> list[_Note]:
        """contact.linked / contact.unlinked: fold the contact's amoCRM contact into the
        person's (or back); the note they leave goes with the other contact notes."""
        notes: list[_Note] = []
        person_merges = merges.PersonMerges(self.client, self.links)
        for i in indices:
            try:
                kind, what = person_merges.apply(batch[i])
            except mapping.PayloadError as exc:
                out[i] = Outcome.dead(f"{batch[i].type} {batch[i].id}: {exc}")
                continue
            except AmoError as exc:
                out[i] = self.failure(exc)
                continue
            if kind == "note":
                notes.append(_Note(i, what))
            else:
                out[i] = Outcome.done(what)
        return notes

    def _opt_outs(self, batch: list[HubEvent], opted_out: list[tuple[int, Mapping[str, Any]]],
                  out: list[Outcome | None], notes: list[_Note] | None = None) -> None:
        notes = list(notes or [])
        for i, contact in opted_out:
            etype, eid = mapping.contact_key(contact)
            contact_id = self.links.get(etype, eid)
            if contact_id is None:
                out[i] = Outcome.done({"skipped": "customer not in amoCRM yet"})
                continue
            reason = batch[i].data.get("reason") or "no reason given"
            body = mapping.contact_note_body(int(contact_id), f"Opted out of WhatsApp messages ({reason})")
            body["request_id"] = f"optout-{batch[i].id}"
            notes.append(_Note(i, body))
        self._send_notes("/api/v4/contacts/notes", notes, out)
