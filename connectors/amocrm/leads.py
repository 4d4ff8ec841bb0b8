"""Making sure every conversation of a wave has its deal (and the deal its contact).

For the conversations of one deliver() wave, in as few requests as amoCRM allows:

1. links already stored (hub -> amoCRM ids): nothing to do;
2. intents left by an interrupted attempt: look in amoCRM first (recovery.py);
3. customers amoCRM may already know: by stored link, or (setting "search") by phone;
4. "reuse open deal": the customer's open deal in the pipeline, found in two batched GETs;
5. everything else: POST /api/v4/leads/complex, 50 deals with their contacts per request.
   A customer new to amoCRM with two conversations in the wave gets one contact: the
   second conversation waits for the first one's answer (never two contacts per phone).

Links are stored the moment amoCRM answers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from connectors.amocrm import intents, mapping, recovery
from connectors.amocrm.client import AmoClient
from connectors.amocrm.errors import AmoError, Transient, ValidationFailed
from connectors.base import LinkStore
from connectors.person import NEW_CHANNEL_OPENS_DEAL, as_person, reuses_open_deal

log = logging.getLogger(__name__)

COMPLEX_BATCH = 50  # documented maximum of /api/v4/leads/complex
FILTER_BATCH = 50
CONVERSATION = "conversation"
LEAD_REVERSE = "lead"  # amoCRM lead id -> hub conversation id (for webhooks)
# amoCRM lead id -> the responsible_user_id the hub last wrote there (or last saw in a
# webhook): a webhook showing another one is a change a manager made in amoCRM
RESPONSIBLE = "amocrm.responsible"


@dataclass
class Wanted:
    """A conversation's deal to find or make; `contact` as the event gives it (of(): as
    the person, so every channel's conversation reaches the person's amoCRM contact)."""

    conversation: Mapping[str, Any]
    contact: Mapping[str, Any]
    channel_contact: Mapping[str, Any] = field(default_factory=dict)  # before as_person

    @classmethod
    def of(cls, conversation: Mapping[str, Any], contact: Mapping[str, Any]) -> "Wanted":
        return cls(conversation, as_person(contact), contact)

    def reuses_open_deal(self, settings: Mapping[str, Any]) -> bool:
        return reuses_open_deal(self.channel_contact, new_channel_opens_deal=bool(settings.get(NEW_CHANNEL_OPENS_DEAL)),
                                usual=settings.get("deal_mode", "reuse_open") == "reuse_open")

    @property
    def conv_id(self) -> str:
        return str(mapping.require(self.conversation, "id"))

    @property
    def key(self) -> tuple[str, str]:
        return mapping.contact_key(self.contact)

    def validate(self) -> None:
        """PayloadError now, rather than half-way through the wave."""
        self.conv_id, self.key  # noqa: B018


@dataclass
class Ensured:
    leads: dict[str, int] = field(default_factory=dict)  # conversation id -> lead id
    created: set[str] = field(default_factory=set)
    failed: dict[str, AmoError] = field(default_factory=dict)


class LeadEnsurer:
    def __init__(self, client: AmoClient, links: LinkStore, settings: Mapping[str, Any],
                 now: Callable[[], float]):
        self.client = client
        self.links = links
        self.settings = settings
        self.now = now
        self.contact_ids: dict[tuple[str, str], int] = {}
        self.lead_candidates: dict[int, list[int]] = {}  # contact id -> its deal ids

    # -- links ------------------------------------------------------------------------
    def _load_contact_links(self, wanted: list[Wanted]) -> None:
        by_type: dict[str, list[str]] = {}
        for w in wanted:
            etype, eid = w.key
            by_type.setdefault(etype, []).append(eid)
        for etype, ids in by_type.items():
            for eid, crm_id in self.links.get_many(etype, ids).items():
                self.contact_ids[(etype, eid)] = int(crm_id)

    def link_contact(self, key: tuple[str, str], contact_id: int) -> int:
        stored = int(self.links.put(key[0], key[1], "contact", str(contact_id)))
        self.contact_ids[key] = stored
        return stored

    def link_lead(self, conv_id: str, lead_id: int, result: Ensured) -> None:
        stored = int(self.links.put(CONVERSATION, conv_id, "lead", str(lead_id)))
        self.links.put(LEAD_REVERSE, str(stored), "conversation", conv_id)
        result.leads[conv_id] = stored

    def link_created(self, created: list[tuple[tuple[str, str], int | None, str, int]], result: Ensured,
                     responsible: dict[str, Any] | None = None) -> None:
        """Store what one leads/complex answer created - (contact key, contact id,
        conversation id, lead id) each - in one transaction per link type, so a batch of
        50 costs a few round trips, not 150; existing links win as in link_contact/link_lead.
        With operators mapped, the responsible user each new deal got is remembered
        (`responsible`: conversation id -> amoCRM user id)."""
        responsible = responsible or {}
        by_type: dict[str, dict[str, tuple[str, str, str]]] = {}
        for key, contact_id, _, _ in created:
            if contact_id:  # the first answer for a key wins, as with one put after another
                by_type.setdefault(key[0], {}).setdefault(key[1], (key[1], "contact", str(contact_id)))
        for etype, rows in by_type.items():
            for eid, crm_id in self.links.put_many(etype, list(rows.values())).items():
                self.contact_ids[(etype, eid)] = int(crm_id)
        leads = self.links.put_many(CONVERSATION, [(conv_id, "lead", str(lead_id)) for _, _, conv_id, lead_id in created])
        reverse: dict[str, tuple[str, str, str]] = {}
        for _, _, conv_id, _ in created:
            reverse.setdefault(str(leads[conv_id]), (str(leads[conv_id]), "conversation", conv_id))
        self.links.put_many(LEAD_REVERSE, list(reverse.values()))
        for _, _, conv_id, _ in created:
            result.leads[conv_id] = int(leads[conv_id])
        if self.settings.get("operator_users"):
            self.links.set_many(RESPONSIBLE, [(str(leads[conv_id]), "user", str(responsible[conv_id]))
                                              for _, _, conv_id, _ in created if responsible.get(conv_id)])

    # -- the steps ------------------------------------------------------------------------
    def ensure(self, wanted: list[Wanted]) -> Ensured:
        result = Ensured()
        known = self.links.get_many(CONVERSATION, [w.conv_id for w in wanted])
        result.leads.update({k: int(v) for k, v in known.items()})
        todo = [w for w in wanted if w.conv_id not in known]
        if not todo:
            return result
        self._load_contact_links(todo)
        todo = self._recover(todo, result)
        if not todo:
            return result
        if self.settings.get("existing_contacts", "search") == "search":
            todo = self._search_contacts(todo, result)
        reusing = [w for w in todo if w.reuses_open_deal(self.settings)]
        if reusing:
            left = {w.conv_id for w in self._reuse_open(reusing, result)}
            todo = [w for w in todo if w.conv_id in left or not w.reuses_open_deal(self.settings)]
        self._create(todo, result)
        return result

    def _recover(self, todo: list[Wanted], result: Ensured) -> list[Wanted]:
        left = intents.earlier(self.links, intents.LEAD, [w.conv_id for w in todo])
        if not left:
            return todo
        suspects = [w for w in todo if w.conv_id in left]
        try:
            found = recovery.find_created_leads(self.client, suspects, left, self.settings)
        except AmoError as exc:
            for w in suspects:
                result.failed[w.conv_id] = exc
            return [w for w in todo if w.conv_id not in left]
        for w in suspects:
            hit = found.get(w.conv_id)
            if hit is None:
                continue
            lead_id, contact_id = hit
            if contact_id:
                self.link_contact(w.key, contact_id)
            self.link_lead(w.conv_id, lead_id, result)
            log.info("conversation %s: found deal %s an interrupted attempt created", w.conv_id, lead_id)
        return [w for w in todo if w.conv_id not in result.leads]

    def _search_contacts(self, todo: list[Wanted], result: Ensured) -> list[Wanted]:
        """One GET per new phone: amoCRM's `query` cannot look several up at once."""
        searched: set[tuple[str, str]] = set()
        for w in todo:
            key = w.key
            if key[0] != "phone" or key in self.contact_ids or key in searched:
                continue
            searched.add(key)
            try:
                found = self.client.collect("/api/v4/contacts", "contacts",
                                            {"query": mapping.national_digits(key[1]), "with": "leads"})
            except AmoError as exc:
                for other in todo:
                    if other.key == key:
                        result.failed[other.conv_id] = exc
                continue
            region = mapping.region_of(key[1])
            matches = sorted((c for c in found if key[1] in mapping.phones(c, region)), key=lambda c: c["id"])
            if matches:
                contact = matches[0]
                self.link_contact(key, int(contact["id"]))
                self.lead_candidates[int(contact["id"])] = [
                    int(lead["id"]) for lead in mapping.embedded(contact, "leads")]
        return [w for w in todo if w.conv_id not in result.failed]

    def _reuse_open(self, todo: list[Wanted], result: Ensured) -> list[Wanted]:
        candidates: dict[int, list[int]] = dict(self.lead_candidates)
        unknown = sorted({self.contact_ids[w.key] for w in todo if w.key in self.contact_ids} - set(candidates))
        try:
            for chunk in _chunks(unknown, FILTER_BATCH):
                for contact in self.client.collect("/api/v4/contacts", "contacts",
                                                   {"filter[id][]": chunk, "with": "leads"}):
                    candidates[int(contact["id"])] = [int(x["id"]) for x in mapping.embedded(contact, "leads")]
            lead_ids = sorted({lid for ids in candidates.values() for lid in ids})
            leads: dict[int, dict[str, Any]] = {}
            for chunk in _chunks(lead_ids, FILTER_BATCH):
                for lead in self.client.collect("/api/v4/leads", "leads", {"filter[id][]": chunk}):
                    leads[int(lead["id"])] = lead
        except AmoError as exc:
            for w in todo:
                if w.key in self.contact_ids:
                    result.failed[w.conv_id] = exc
            return [w for w in todo if w.conv_id not in result.failed]
        pipeline = self.settings.get("pipeline_id")
        for w in todo:
            contact_id = self.contact_ids.get(w.key)
            if contact_id is None:
                continue
            open_ = [leads[i] for i in candidates.get(contact_id, []) if i in leads and _is_open(leads[i], pipeline)]
            if open_:
                lead = max(open_, key=lambda x: int(x["id"]))
                self.link_lead(w.conv_id, int(lead["id"]), result)
        return [w for w in todo if w.conv_id not in result.leads]

    def _create(self, todo: list[Wanted], result: Ensured) -> None:
        pending = list(todo)
        while pending:
            this_round: list[Wanted] = []
            later: list[Wanted] = []
            creating: set[tuple[str, str]] = set()
            for w in pending:
                if w.key in self.contact_ids:
                    this_round.append(w)
                elif w.key not in creating:
                    creating.add(w.key)
                    this_round.append(w)
                else:
                    later.append(w)  # same new customer: wait for its contact id
            for chunk in _chunks(this_round, COMPLEX_BATCH):
                self._post_complex(chunk, result)
            pending = []
            for w in later:
                sibling = next((s for s in this_round if s.key == w.key and s.conv_id in result.leads), None)
                if sibling is None:
                    failed = next((result.failed[s.conv_id] for s in this_round
                                   if s.key == w.key and s.conv_id in result.failed), None)
                    result.failed[w.conv_id] = failed or Transient("the customer's contact was not created")
                elif w.reuses_open_deal(self.settings):
                    self.link_lead(w.conv_id, result.leads[sibling.conv_id], result)
                else:
                    pending.append(w)

    def _post_complex(self, chunk: list[Wanted], result: Ensured) -> None:
        now = self.now()
        bodies = {}
        for w in chunk:
            body = mapping.lead_body(w.conversation, w.contact, self.settings,
                                     contact_id=self.contact_ids.get(w.key))
            body["updated_at"] = int(now)
            bodies[w.conv_id] = body
        intents.declare(self.links, intents.LEAD, list(bodies), now)
        while bodies:
            try:
                answer = self.client.post("/api/v4/leads/complex", list(bodies.values()))
                created = mapping.complex_created(answer)
            except ValidationFailed as exc:
                bad = {rid for rid in exc.errors if rid in bodies}
                if not bad:  # amoCRM named no request: the whole request is wrong
                    for w in chunk:
                        if w.conv_id in bodies:
                            result.failed[w.conv_id] = exc
                    return
                for rid in bad:
                    result.failed[rid] = ValidationFailed(
                        f"amoCRM rejected the deal of conversation {rid}: " + "; ".join(exc.errors[rid]),
                        {rid: exc.errors[rid]}, response=exc.response)
                    del bodies[rid]
                continue  # the others were valid: send them again without the bad ones
            except (AmoError, ValueError) as exc:
                error = exc if isinstance(exc, AmoError) else Transient(f"leads/complex: {exc}", ambiguous=True)
                for w in chunk:
                    if w.conv_id in bodies:
                        result.failed[w.conv_id] = error
                return
            answered = []
            for w in chunk:
                item = created.get(w.conv_id)
                if w.conv_id not in bodies:
                    continue
                if item is None:
                    result.failed[w.conv_id] = Transient(
                        f"leads/complex answered without conversation {w.conv_id}", ambiguous=True)
                    continue
                answered.append((w.key, int(item.contact_id) if item.contact_id else None, w.conv_id, item.lead_id))
                result.created.add(w.conv_id)
            self.link_created(answered, result, {conv: body.get("responsible_user_id")
                                                 for conv, body in bodies.items()})
            return


def _is_open(lead: Mapping[str, Any], pipeline: int | None) -> bool:
    if lead.get("is_deleted") or int(lead.get("status_id") or 0) in (mapping.WON, mapping.LOST):
        return False
    return not pipeline or int(lead.get("pipeline_id") or 0) == int(pipeline)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
