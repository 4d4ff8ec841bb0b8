"""A delivery worker SIGKILLed while a destination holds its answer, then a second one:
what the conversion SIGKILL tests of every analytics destination share."""
from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.models import Delivery
from tests.support.processes import hub_env, start_hub, stop, wait_for

FIXTURES = Path(__file__).parent.parent / "fixtures"


def emit_won_deals(runtime, fixture: str, n: int) -> None:
    """`n` deal.stage_changed events made from a fixture's event, deal-0 .. deal-<n-1>,
    each of its own conversation (100, 101, ...)."""
    template = json.loads((FIXTURES / fixture).read_text())["event"]["data"]
    with runtime.db.scope() as session:
        for i in range(n):
            data = json.loads(json.dumps(template))
            data["conversation"]["id"] = 100 + i
            data["deal"]["id"] = f"deal-{i}"
            emit(session, "deal.stage_changed", data, now=utcnow(), ordering_key=f"conversation:{100 + i}")


def done(runtime) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "done"))


def kill_mid_send_then_finish(runtime, database_url: str, tmp_path: Path, *, arrived: Callable[[], int],
                              total: int) -> None:
    """Start a worker; SIGKILL it once the destination has `arrived()` >= 5 (the emulator
    holds each answer after storing, so the kill lands between what the destination keeps
    and the worker's commit); a second worker then finishes every delivery once the
    first one's lease runs out."""
    env = hub_env(database_url, tmp_path, worker__batch_size="10", worker__lease_seconds="2",
                  worker__poll_seconds="0.05")
    first = start_hub(["worker"], env, tmp_path / "first.log")
    try:
        wait_for(lambda: arrived() >= 5, 60, "the first worker to start sending")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    assert done(runtime) < total, "the kill should have left work behind"
    second = start_hub(["worker"], env, tmp_path / "second.log")
    try:
        wait_for(lambda: done(runtime) == total, 120, f"all {total} deliveries done")
    finally:
        stop(second)
