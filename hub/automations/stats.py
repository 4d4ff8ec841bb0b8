"""Per-scenario statistics: runs started, finished each way, and where they dropped."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Run

DROPPED = ("stopped", "failed")


def of_scenario(session: Session, scenario_id: int) -> dict[str, Any]:
    counts = dict(session.execute(select(Run.status, func.count()).where(Run.scenario_id == scenario_id)
                                  .group_by(Run.status)).all())
    dropped_at = {step or "(start)": n for step, n in session.execute(
        select(Run.step_id, func.count()).where(Run.scenario_id == scenario_id, Run.status.in_(DROPPED))
        .group_by(Run.step_id)).all()}
    return {"started": sum(counts.values()),
            "running": sum(counts.get(s, 0) for s in ("active", "waiting", "paused")),
            "completed": counts.get("completed", 0), "handed_off": counts.get("handed_off", 0),
            "closed": counts.get("closed", 0), "dropped": sum(counts.get(s, 0) for s in DROPPED),
            "dropped_at": dropped_at}
