"""Chaos: 5xx, 429 with Retry-After, answers lost to timeouts, a worker SIGKILLed mid-batch.
After draining: exact counts, nothing duplicated, nothing dead."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.hubspot import benchkit
from hub.crm.worker import Worker
from hub.platform.runtime import Runtime
from tests.conftest import ENCRYPTION_KEY, make_config
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import emit_conversations
from tests.connectors.hubspot.test_sync_e2e import assert_synced, statuses

ROOT = Path(__file__).resolve().parents[3]


def drain_until_done(runtime, worker: Worker, total: int, limit_seconds: float = 120) -> None:
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        worker.drain()
        counts = statuses(runtime)
        if counts.get("done", 0) + counts.get("dead", 0) == total:
            return
        time.sleep(0.1)
    raise AssertionError(f"not drained in time: {statuses(runtime)}")


@pytest.fixture
def fast_runtime(database_url, tmp_path):
    config = make_config(database_url, tmp_path, delivery__http_timeout_seconds=0.5,
                         delivery__backoff_base_seconds=0.05, delivery__backoff_max_seconds=0.5,
                         worker__lease_seconds=3)
    rt = Runtime.from_config(config)
    yield rt
    rt.db.dispose()


def test_5xx_429_and_lost_answers_end_in_exact_counts(fast_runtime):
    runtime = fast_runtime
    with benchkit.start_emulator(per_10_seconds=250, fail_rate=0.1, rate429_rate=0.05, retry_after=1,
                                 timeout_rate=0.05, timeout_seconds=0.8, seed=11) as emu:
        make_connector(runtime, emu)
        emit_conversations(runtime, 120, messages=3)
        drain_until_done(runtime, Worker(runtime.db, runtime.vault, runtime.config), 120 * 4 + 30)
        stats = emu.stats()
        assert stats["injected_5xx"] > 0 and stats["injected_429"] > 0 and stats["slow_answers"] > 0
        assert statuses(runtime) == {"done": 120 * 4 + 30}
        assert_synced(emu, 120, 3)
        assert stats["rate_limited"] == 0


@pytest.mark.slow
def test_worker_sigkilled_mid_batch_then_another_drains(fast_runtime, tmp_path):
    runtime = fast_runtime
    with benchkit.start_emulator(per_10_seconds=250, delay_seconds=0.3) as emu:
        make_connector(runtime, emu)
        emit_conversations(runtime, 150, messages=3)
        env = {**os.environ, "HUB_DATABASE_URL": runtime.config.database_url,
               "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY, "HUB_DATA_DIR": str(tmp_path / "data"),
               "HUB_SECRET_KEY": "test", "HUB_WORKER__LEASE_SECONDS": "2", "HUB_WORKER__BATCH_SIZE": "100",
               "HUB_WORKER__POLL_SECONDS": "0.05", "HUB_LOG__LEVEL": "WARNING"}
        process = subprocess.Popen([sys.executable, "-m", "hub", "worker"], cwd=ROOT, env=env)
        try:
            # Kill while a communications batch is in flight: HubSpot has created them, the
            # worker has not stored the links yet (the emulator answers 0.3 s late).
            deadline = time.monotonic() + 60
            while emu.created("communications") == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert emu.created("communications") > 0, "the worker never reached the communications"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        orphans = emu.counts()["notes"]
        assert 0 < orphans < 450
        emu.set_chaos(delay_seconds=0.0)
        time.sleep(2.1)  # the dead worker's lease expires
        drain_until_done(runtime, Worker(runtime.db, runtime.vault, runtime.config), 150 * 4 + 38)
        assert statuses(runtime) == {"done": 150 * 4 + 38}
        assert_synced(emu, 150, 3)
        assert recovered(runtime) > 0  # the orphans were found and linked, not created twice


def recovered(runtime) -> int:
    from sqlalchemy import select

    from hub.models import Delivery
    with runtime.db.scope() as session:
        responses = session.scalars(select(Delivery.last_response)).all()
    return sum(1 for r in responses if r and (r.get("hubspot") or {}).get("recovered"))
