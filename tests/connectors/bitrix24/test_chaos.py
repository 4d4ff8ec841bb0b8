"""Failures on the way: exact counts after draining, nothing doubled, nothing dead."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.crm.worker import Worker
from hub.platform.runtime import Runtime
from tests.conftest import ENCRYPTION_KEY, make_config
from tests.connectors.bitrix24.conftest import webhook_settings
from tests.connectors.bitrix24.factory import NOTES_PER_CONVERSATION, emit_conversations
from tests.connectors.bitrix24.test_end_to_end import make_connector, statuses


def drain_until_settled(runtime: Runtime, worker: Worker, total: int, timeout: float = 90.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.drain()
        now = statuses(runtime)
        if now.get("done", 0) + now.get("dead", 0) == total:
            return now
        time.sleep(0.1)
    return statuses(runtime)


def assert_exact(portal, conversations: int) -> None:
    assert portal.counts() == {"contacts": conversations, "deals": conversations,
                               "notes": conversations * NOTES_PER_CONVERSATION}
    p = portal.portal
    assert len({c["PHONE"][0]["VALUE"] for c in p.contacts.values()}) == conversations
    assert len({d["ORIGIN_ID"] for d in p.deals.values()}) == conversations
    per_deal = {}
    for c in p.comments.values():
        per_deal.setdefault(c["ENTITY_ID"], []).append(c["COMMENT"])
    assert all(len(texts) == len(set(texts)) == NOTES_PER_CONVERSATION for texts in per_deal.values())


def test_5xx_limit_bursts_slow_answers_and_a_failing_command(database_url, tmp_path, portal):
    config = make_config(database_url, tmp_path, delivery__http_timeout_seconds=0.5,
                         delivery__backoff_base_seconds=0.2, delivery__backoff_max_seconds=1)
    runtime = Runtime.from_config(config)
    try:
        make_connector(runtime, webhook_settings(portal))
        total = emit_conversations(runtime, 60)
        p = portal.portal
        # the first request fails with a 500, the third with a 502
        p.chaos.fail_next.extend([(500, "INTERNAL_SERVER_ERROR")])
        # a burst of refusals from the portal's bucket (another app spent it)
        p.chaos.limit_next = 2
        # an answer that comes after the client gave up: the work was done anyway
        p.chaos.slow_next.extend([0.0, 0.0, 1.0, 0.0, 1.0])
        # one contact.add and one comment inside a batch fail; their neighbours must not
        p.fail_commands("crm.contact.add", 1, match=lambda params: params["fields"]["NAME"] == "Customer")
        p.fail_commands("crm.timeline.comment.add", 2)
        p.fail_commands("crm.deal.add", 1, code="ERROR_UNEXPECTED_ANSWER", description="Server returned an unexpected response")
        result = drain_until_settled(runtime, Worker(runtime.db, runtime.vault, runtime.config), total)
        assert result == {"done": total}
        assert_exact(portal, 60)
        assert p.stats["injected"] >= 6
    finally:
        runtime.db.dispose()


def test_one_invalid_row_is_dead_and_its_neighbours_are_done(runtime, portal):
    make_connector(runtime, webhook_settings(portal))
    total = emit_conversations(runtime, 10, script=[("conversation.started", {})])
    portal.portal.fail_commands("crm.deal.add", 100, code="", description="Field 'TITLE' is too long",
                                match=lambda params: params["fields"]["ORIGIN_ID"] == "5003")
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": total - 1, "dead": 1}
    from sqlalchemy import select
    from hub.models import Delivery
    with runtime.db.scope() as session:
        dead = session.scalars(select(Delivery.last_error).where(Delivery.status == "dead")).one()
    assert "crm.deal.add" in dead and "TITLE" in dead
    assert portal.counts()["deals"] == 9 and portal.counts()["contacts"] == 10


def _worker_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_DATABASE_URL": database_url, "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "HUB_DATA_DIR": str(tmp_path / "worker-data"), "HUB_SECRET_KEY": "test-secret-key",
        "HUB_WORKER__LEASE_SECONDS": "2", "HUB_WORKER__POLL_SECONDS": "0.05", "HUB_WORKER__BATCH_SIZE": "50",
        "HUB_DELIVERY__BACKOFF_BASE_SECONDS": "0.2", "HUB_DELIVERY__BACKOFF_MAX_SECONDS": "1",
        "HUB_SCHEDULER__ENABLED": "false", "HUB_LOG__LEVEL": "WARNING",
    })
    return env


@pytest.mark.slow
def test_sigkill_mid_batch_then_another_worker_drains(database_url, tmp_path, portal):
    config = make_config(database_url, tmp_path, worker__lease_seconds=2)
    runtime = Runtime.from_config(config)
    try:
        make_connector(runtime, webhook_settings(portal))
        total = emit_conversations(runtime, 100)
        # Slow every answer a little so the kill lands while batches are in flight.
        portal.portal.chaos.slow_next.extend([0.3] * 40)
        proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=_worker_env(database_url, tmp_path),
                                cwd=str(Path(__file__).resolve().parents[3]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while portal.counts()["notes"] < 40 and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError(f"worker exited early: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert portal.counts()["notes"] < 100 * NOTES_PER_CONVERSATION, "the kill came too late to mean anything"
        time.sleep(2.1)  # the dead worker's lease runs out
        result = drain_until_settled(runtime, Worker(runtime.db, runtime.vault, runtime.config), total)
        assert result == {"done": total}
        assert_exact(portal, 100)
    finally:
        runtime.db.dispose()
