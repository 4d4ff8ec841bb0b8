"""The delivery worker: claims batches of the delivery ledger per connector and hands
them to the connector built from its row (the CRM side of delivery: hub.delivery owns the
ledger and knows no connector row).

A claimed batch is delivered in waves: wave k holds the k-th event of every
conversation in the batch, so a CRM connector can still batch across conversations
while each conversation's events go strictly in order. When an event is not done, the
rest of its conversation in the batch is handed back untried.
"""
from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select

from connectors.base import Connector, HubEvent, Outcome, UnknownConnectorKind, registry
from hub.platform.config import Config
from hub.crm.store import build_connector
from hub.platform.db import Database, utcnow
from hub.platform.runtime import worker_id
from hub.delivery import ledger
from hub.delivery.ledger import Claimed, Policy
from hub.models import ConnectorRecord
from hub.shared.security import SecretsUnreadable, Vault

log = logging.getLogger(__name__)


def split_waves(items: list[Claimed]) -> list[list[Claimed]]:
    waves: list[list[Claimed]] = []
    position: dict[str, int] = {}
    for item in items:
        if item.ordering_key is None:
            index = 0
        else:
            index = position.get(item.ordering_key, 0)
            position[item.ordering_key] = index + 1
        while len(waves) <= index:
            waves.append([])
        waves[index].append(item)
    return waves


def to_hub_event(item: Claimed) -> HubEvent:
    e = item.event
    return HubEvent(
        id=e.id,
        type=e.type,
        version=e.version,
        occurred_at=e.occurred_at,
        data=e.data,
        ordering_key=e.ordering_key,
        # A delivery taken over from a dead worker counts that worker's try, so the
        # connector knows to look for what it may have created.
        attempt=item.attempts + 1 + (1 if item.reclaimed else 0),
    )


class Worker:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        config: Config,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        sources: list[Callable[[], int]] | None = None,
    ):
        self.db = db
        self.vault = vault
        self.config = config
        self.owner = owner or worker_id()
        self.clock = clock
        self.rng = rng
        self.policy = Policy.from_config(config)
        self._instances: dict[int, tuple[datetime, Connector]] = {}
        self._turn = 0
        # Other queues this worker serves in the same loop (outgoing WhatsApp messages):
        # each is a callable doing one round and returning how many items it handled.
        self.sources = list(sources or [])

    # -- connectors -------------------------------------------------------------
    def _connector(self, record: ConnectorRecord) -> Connector:
        cached = self._instances.get(record.id)
        if cached and cached[0] == record.updated_at:
            return cached[1]
        instance = build_connector(
            self.db, self.vault, record, clock=self.clock,
            http_timeout=self.config.delivery.http_timeout_seconds, base_url=self.config.base_url,
        )
        self._instances[record.id] = (record.updated_at, instance)
        return instance

    def _enabled_connectors(self) -> list[ConnectorRecord]:
        with self.db.scope() as session:
            return list(
                session.scalars(
                    select(ConnectorRecord).where(ConnectorRecord.enabled.is_(True)).order_by(ConnectorRecord.id)
                )
            )

    # -- one round ----------------------------------------------------------------
    def run_once(self) -> int:
        """One round of every other source, then one batch for the next connector."""
        handled = sum(source() for source in self.sources)
        return handled + self._deliver_once()

    def _deliver_once(self) -> int:
        records = self._enabled_connectors()
        if not records:
            return 0
        for offset in range(len(records)):
            record = records[(self._turn + offset) % len(records)]
            kind = registry.find(record.kind)
            limit = (kind.claim_size if kind is not None else None) or self.config.worker.batch_size
            with self.db.scope() as session:
                claimed = ledger.claim(
                    session, record.id, self.owner, now=self.clock(),
                    limit=limit,
                    lease_seconds=self.policy.lease_seconds,
                )
            if claimed:
                self._turn = (self._turn + offset + 1) % len(records)
                self.process(record, claimed)
                return len(claimed)
        return 0

    def process(self, record: ConnectorRecord, claimed: list[Claimed]) -> None:
        try:
            connector: Connector | None = self._connector(record)
            setup_error = ""
        except (UnknownConnectorKind, SecretsUnreadable) as exc:
            connector, setup_error = None, str(exc)
        blocked: set[str] = set()
        released: list[int] = []
        lease_until = self.clock() + timedelta(seconds=self.policy.lease_seconds)
        for wave in split_waves(claimed):
            ready = [c for c in wave if c.ordering_key is None or c.ordering_key not in blocked]
            released.extend(c.delivery_id for c in wave if c not in ready)
            if not ready:
                continue
            if connector is None:
                outcomes = [Outcome.retry(setup_error)] * len(ready)
            else:
                outcomes = self._deliver(connector, record, ready)
            now = self.clock()
            with self.db.scope() as session:
                ledger.record_outcomes(
                    session, self.owner, list(zip(ready, outcomes)), now=now,
                    policy=self.policy, rng=self.rng,
                )
                if now > lease_until - timedelta(seconds=self.policy.lease_seconds / 2):
                    lease_until = now + timedelta(seconds=self.policy.lease_seconds)
                    rest = {c.delivery_id for c in claimed} - {c.delivery_id for c in ready}
                    ledger.extend_lease(session, rest, self.owner, until=lease_until)
            for item, outcome in zip(ready, outcomes):
                if outcome.status != "done" and item.ordering_key is not None:
                    blocked.add(item.ordering_key)
                if outcome.status == "dead":
                    log.warning("delivery %s to %s is dead: %s", item.delivery_id, record.name, outcome.error)
        if released:
            with self.db.scope() as session:
                ledger.release(session, self.owner, released, now=self.clock())

    def _deliver(self, connector: Connector, record: ConnectorRecord, items: list[Claimed]) -> list[Outcome]:
        events = [to_hub_event(c) for c in items]
        try:
            outcomes = connector.deliver(events)
        except Exception as exc:  # a connector bug must not take the worker down
            log.exception("connector %s failed on a batch of %d", record.name, len(events))
            return [Outcome.retry(f"connector error: {type(exc).__name__}: {exc}")] * len(events)
        if len(outcomes) != len(events):
            error = f"connector returned {len(outcomes)} outcomes for {len(events)} events"
            log.error("%s: %s", record.name, error)
            return [Outcome.retry(error)] * len(events)
        return outcomes

    # -- loops ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.owner)
        poll = self.config.worker.poll_seconds
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:
                log.exception("worker round failed; retrying in %.1f s", poll)
                handled = 0
            if not handled:
                stop.wait(poll)
        log.info("worker %s stopped", self.owner)

    def drain(self, max_rounds: int = 100_000) -> int:
        """Deliver until nothing is due now (tests, `hub deliveries drain`)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total
