"""A worker SIGKILLed while Meta holds its answer: the events Meta stored are sent again
by the next worker under the same event_id, Meta keeps them once, nothing is lost."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.meta_capi import emulator as meta_emulator
from hub.connector_store import create_connector
from hub.db import utcnow
from hub.events import emit
from hub.models import Delivery
from tests.support.processes import hub_env, start_hub, stop, wait_for

pytestmark = pytest.mark.slow
FIXTURE = Path(__file__).parent / "fixtures" / "meta_capi" / "purchase_on_won.json"


def done(runtime) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "done"))


def test_sigkill_while_meta_answers_sends_each_purchase_once(runtime, database_url, tmp_path):
    template = json.loads(FIXTURE.read_text())["event"]["data"]
    with meta_emulator.serve() as meta:
        meta.state.answer_delay = 0.05
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="meta_capi", name="meta", now=utcnow(), settings={
                "dataset_id": "1234567890123", "access_token": meta.token,
                "whatsapp_business_account_id": "1100000000000001", "graph_url": meta.base_url})
        with runtime.db.scope() as session:
            for n in range(40):
                data = json.loads(json.dumps(template))
                data["conversation"]["id"] = 100 + n % 10
                data["deal"]["id"] = f"deal-{n}"
                emit(session, "deal.stage_changed", data, now=utcnow(), ordering_key=f"conversation:{100 + n % 10}")
        env = hub_env(database_url, tmp_path, worker__batch_size="10", worker__lease_seconds="2",
                      worker__poll_seconds="0.05")
        first = start_hub(["worker"], env, tmp_path / "first.log")
        try:
            wait_for(lambda: len(meta.received()) >= 5, 60, "the first worker to start sending")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            stop(first)
        assert done(runtime) < 40, "the kill should have left work behind"
        second = start_hub(["worker"], env, tmp_path / "second.log")
        try:
            wait_for(lambda: done(runtime) == 40, 120, "all 40 deliveries done")
        finally:
            stop(second)
        received = meta.received("Purchase")
    assert sorted(e["event_id"] for e in received) == sorted(f"deal-2-deal-{n}-Purchase" for n in range(40))
