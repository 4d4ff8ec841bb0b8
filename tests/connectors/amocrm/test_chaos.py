"""Chaos: 5xx, 429 with Retry-After, timeouts and lost answers from amoCRM, and a worker
killed mid-batch. Afterwards: the exact counts, nothing twice, nothing dead."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from connectors.amocrm.emulator import serve
from tests.conftest import ENCRYPTION_KEY
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, long_lived_settings, wait_for

ROOT = Path(__file__).resolve().parents[3]


def assert_exact(amo, conversations: int, messages: int) -> None:
    assert amo.counts() == {"contacts": conversations, "deals": conversations,
                            "notes": conversations * messages, "contact_notes": 0}
    store = amo.store
    names = Counter(lead["name"] for lead in store.leads.values())
    assert len(names) == conversations and set(names.values()) == {1}
    phones = Counter(cf["values"][0]["value"] for c in store.contacts.values() for cf in c["custom_fields_values"])
    assert len(phones) == conversations and set(phones.values()) == {1}
    texts = Counter(n["params"]["text"] for n in store.notes.values())
    assert len(texts) == conversations * messages and set(texts.values()) == {1}
    for lead in store.leads.values():
        assert len(lead["contact_ids"]) == 1


@pytest.mark.slow
def test_5xx_429_timeouts_and_lost_answers(runtime):
    with serve(timeout_delay=1.0, seed=11) as amo:
        add_connector(runtime, long_lived_settings(amo, timeout_seconds=0.5))
        amo.chaos(fail_rate=0.10, rate_limit_rate=0.05, timeout_rate=0.05, lost_rate=0.03, seed=11)
        with runtime.db.scope() as session:
            for n in range(200):
                ev.emit_conversation(session, n, messages=3)
        result = drain(runtime, deadline=300)
        amo.chaos()
        assert result == {"done": 800}, dead_errors(runtime)[:3]
        stats = amo.stats()
        assert stats["injected_5xx"] and stats["injected_429"] and stats["injected_timeouts"], stats
        assert_exact(amo, 200, 3)
        print(stats)


def start_worker(runtime, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "HUB_DATABASE_URL": runtime.config.database_url, "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY,
           "HUB_SECRET_KEY": "test", "HUB_DATA_DIR": str(tmp_path / "worker"), "HUB_WORKER__LEASE_SECONDS": "2",
           "HUB_WORKER__POLL_SECONDS": "0.05", "HUB_LOG__LEVEL": "WARNING"}
    env.pop("HUB_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "hub", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize("killed_during", ["complex", "notes"])
def test_worker_killed_between_amocrm_answer_and_stored_link(runtime, tmp_path, killed_during):
    with serve() as amo:
        add_connector(runtime, long_lived_settings(amo, timeout_seconds=30))
        with runtime.db.scope() as session:
            for n in range(120):
                ev.emit_conversation(session, n, messages=3)
        worker = start_worker(runtime, tmp_path)
        try:
            wait_for(lambda: amo.counts()["deals"] >= 12, timeout=60, what="the first deals")
            amo.stall_next_post(killed_during)
            wait_for(amo.stalled.is_set, timeout=60, what="a stalled POST")
            created = amo.counts()
            worker.send_signal(signal.SIGKILL)  # amoCRM applied the POST; the worker never hears back
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
            amo.release_stall()
        assert worker.returncode == -signal.SIGKILL
        result = drain(runtime, deadline=120)
        assert result == {"done": 480}, dead_errors(runtime)[:3]
        assert_exact(amo, 120, 3)
        assert created["deals"] + created["notes"] > 0
        # The takeover looked in amoCRM before creating again (intents of the killed attempt).
        looked = amo.stats().get("GET /api/v4/leads", 0) if killed_during == "complex" else \
            amo.stats().get("GET /api/v4/leads/notes", 0)
        assert looked >= 1, amo.stats()
