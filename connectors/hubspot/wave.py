"""The pieces of one sync wave that its steps share: the Item each hub event becomes, the
Entry of a batch create, and what a step written outside sync.py (tasks.py) may ask of
the wave. Kept below both so the arrow runs one way: sync -> tasks -> wave."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from connectors.base import HubEvent, LinkStore, Outcome
from connectors.hubspot.client import HubSpotClient
from connectors.person import NEW_CHANNEL_OPENS_DEAL, as_person, reuses_open_deal


@dataclass
class Item:
    event: HubEvent
    outcome: Outcome | None = None
    contact_crm_id: str | None = None
    deal_crm_id: str | None = None
    deal_is_new: bool = False
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        return self.event.data

    @property
    def conversation(self) -> dict[str, Any]:
        return self.data.get("conversation") or {}

    @property
    def channel_contact(self) -> dict[str, Any]:
        return self.data.get("contact") or {}

    @property
    def contact(self) -> dict[str, Any]:
        """The contact as HubSpot should know it: its person's (connectors.person), so
        every channel's conversation reaches the person's HubSpot contact."""
        return dict(as_person(self.channel_contact))

    def reuses_open_deal(self, settings: dict[str, Any]) -> bool:
        return reuses_open_deal(self.channel_contact, new_channel_opens_deal=bool(settings.get(NEW_CHANNEL_OPENS_DEAL)),
                                usual=settings.get("deal_reuse") == "open_deal")

    def decide(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome


@dataclass
class Entry:
    """One input of a batch create and what to do with its answer.

    `link` names the hub entity to link to the created object, (entity type, hub ids,
    CRM type): the links of a whole answer are stored in one transaction (one per
    object would cost more time than HubSpot's rate limit leaves between requests),
    then `done` gets the CRM id now linked."""

    key: str              # value of the unique id property ("" when there is none)
    trace: str            # objectWriteTraceId
    input: dict[str, Any]
    done: Callable[[str], None]
    fail: Callable[[Outcome], None]
    link: tuple[str, list[str], str] | None = None
    linked: dict[str, str] = field(default_factory=dict)  # hub id -> CRM id linked, set before done
    created: str = ""     # the id HubSpot answered with, set before done


class Wave(Protocol):
    """What tasks.py uses of sync.WaveSync: its client, links and owners, failing items,
    and creating a chunk of entries with their links stored."""

    client: HubSpotClient
    links: LinkStore
    owners: Any  # sync.OwnerDirectory

    def _fail(self, items: list[Item], exc: Exception) -> None: ...

    def _create_chunk(self, object_type: str, entries: list[Entry], id_property: str | None) -> None: ...
