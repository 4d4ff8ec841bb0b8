"""Inbox mode with a worker SIGKILLed after HubSpot published a message but before its
answer came back: another worker takes over and every message is in its thread exactly
once (the retry carries the same integrationIdempotencyId). Both databases."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.hubspot import inbox
from tests.conftest import ENCRYPTION_KEY
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.test_inbox import _emit, dead_errors, drain, inbox_settings, instance, links

ROOT = Path(__file__).resolve().parents[3]
CONVERSATIONS = 20


def start_worker(runtime, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "HUB_DATABASE_URL": runtime.config.database_url, "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY,
           "HUB_SECRET_KEY": "test", "HUB_DATA_DIR": str(tmp_path / "worker"), "HUB_WORKER__LEASE_SECONDS": "2",
           "HUB_WORKER__POLL_SECONDS": "0.05", "HUB_LOG__LEVEL": "WARNING"}
    env.pop("HUB_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "hub", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_worker_killed_while_hubspot_answers_then_another_drains_exactly_once(runtime, emu, tmp_path):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    assert instance(runtime, cid).check().ok
    _emit(runtime, CONVERSATIONS, 2)  # one from the customer, one from the hub, each
    # HubSpot publishes each message, then answers late.
    emu.set_chaos(delay_seconds=0.5, chaos_paths=("/conversations/v3/custom-channels/",))
    worker = start_worker(runtime, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while emu.inbox.stats().get("published", 0) < 3 and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise AssertionError(f"worker exited early: {worker.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        published = emu.inbox.stats().get("published", 0)
        worker.send_signal(signal.SIGKILL)  # the third message is in HubSpot; its answer never arrives
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    assert 3 <= published < 2 * CONVERSATIONS, "the kill came too late to mean anything"
    emu.set_chaos(delay_seconds=0.0)
    result = drain(runtime, deadline=120)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    stats = emu.inbox.stats()
    assert stats["repeated_idempotency"] >= 1  # the takeover named the killed try's message again
    assert len(emu.inbox.threads()) == CONVERSATIONS and len(emu.inbox.inbox.messages) == 2 * CONVERSATIONS
    for n in range(1, CONVERSATIONS + 1):
        assert [m["text"] for m in emu.inbox.messages_of(str(n))] == [
            f"message 0 of conversation {n}", f"message 1 of conversation {n}"]
    assert stats["accounts_created"] == 1
    assert links(runtime, inbox.PUBLISHED) == 2 * CONVERSATIONS
