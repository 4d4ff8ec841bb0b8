"""Audiences: uploaded CSVs (with their refusal report) and segments."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.broadcasts import consent, segments
from hub.broadcasts.csv_upload import parse_csv
from hub.models import Audience


def create_from_csv(session: Session, *, name: str, data: bytes, region: str | None = None,
                    subscription: str = "marketing", now: datetime) -> Audience:
    """Raises CsvProblem when the file cannot be used at all; row problems are reported."""
    parsed = parse_csv(data, region=region)
    opted_out = consent.opted_out_phones(session, [r["phone"] for r in parsed.rows], subscription)
    rows = [r for r in parsed.rows if r["phone"] not in opted_out]
    refused = parsed.refused + [
        {"row": r["row"], "phone": r["phone"], "reason": "opted_out",
         "detail": f"the contact opted out of {subscription} messages"}
        for r in parsed.rows if r["phone"] in opted_out]
    refused.sort(key=lambda r: r["row"])
    audience = Audience(name=name, kind="csv", rows=rows, refused=refused, columns=parsed.columns,
                        created_at=now, updated_at=now)
    session.add(audience)
    session.flush()
    return audience


def create_segment(session: Session, *, name: str, segment: dict[str, Any], now: datetime) -> Audience:
    audience = Audience(name=name, kind="segment", segment=segments.validate(segment), rows=[], refused=[],
                        columns=["name"], created_at=now, updated_at=now)
    session.add(audience)
    session.flush()
    return audience


def members(session: Session, audience: Audience, *, now: datetime) -> list[dict[str, Any]]:
    """[{"phone", "variables", "contact_id"?, "row"?}] in the audience's order."""
    if audience.kind == "segment":
        return segments.evaluate(session, audience.segment or {}, now=now)
    return list(audience.rows)


def summary(audience: Audience) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for r in audience.refused or []:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"id": audience.id, "name": audience.name, "kind": audience.kind, "segment": audience.segment,
            "columns": list(audience.columns or []), "accepted": len(audience.rows or []),
            "refused": len(audience.refused or []), "refused_by_reason": reasons,
            "created_at": audience.created_at.isoformat()}
