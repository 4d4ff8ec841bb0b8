"""Audiences: uploaded CSVs (with their refusal report) and segments."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.broadcasts import consent, segments
from hub.broadcasts.compose import crm_key
from hub.broadcasts.csv_upload import parse_csv
from hub.conversations.tags_and_fields import fields_of_contacts
from hub.models import Audience, Contact, ContactCrmStage


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
    """Raises SegmentProblem naming the part at fault (an unknown filter, a wrong type, a
    field no contact has, a CRM stage no connector reported)."""
    audience = Audience(name=name, kind="segment", segment=segments.check_known(session, segment), rows=[], refused=[],
                        columns=["name"], created_at=now, updated_at=now)
    session.add(audience)
    session.flush()
    return audience


def members(session: Session, audience: Audience, *, now: datetime, contact_fields: Iterable[str] = (),
            crm: Iterable[tuple[str, str | None]] = ()) -> list[dict[str, Any]]:
    """[{"phone", "variables", "contact_id"?, "row"?}] in the audience's order, with the
    contact custom fields named in `contact_fields` among the variables ("contact.city"),
    and the CRM values named in `crm` ((value, pipeline) pairs; compose.crm_key)."""
    if audience.kind == "segment":
        found = segments.evaluate(session, audience.segment or {}, now=now)
    else:
        found = list(audience.rows)
    names, wanted = list(contact_fields), list(crm)
    found = with_contact_fields(session, found, names) if names else found
    return with_crm_values(session, found, wanted) if wanted else found


def _contact_ids(session: Session, found: list[dict[str, Any]]) -> dict[str, int | None]:
    """Phone -> contact id; a CSV row is the contact of its number, if the hub knows one."""
    by_phone: dict[str, int] = {}
    unknown = sorted({m["phone"].lstrip("+") for m in found if m.get("contact_id") is None})
    for start in range(0, len(unknown), 1000):
        by_phone.update({f"+{wa_id}": cid for cid, wa_id in session.execute(
            select(Contact.id, Contact.wa_id).where(Contact.wa_id.in_(unknown[start:start + 1000])))})
    return {m["phone"]: m.get("contact_id") or by_phone.get(m["phone"]) for m in found}


def with_crm_values(session: Session, found: list[dict[str, Any]],
                    wanted: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
    """The members with what the CRM last reported for their contact's deal: per pipeline
    when a source names one, else of the deal that changed last. Read a thousand contacts
    a statement; a contact without it gets no such variable (and is skipped)."""
    ids = _contact_ids(session, found)
    known = sorted({i for i in ids.values() if i is not None})
    stages: dict[int, list[ContactCrmStage]] = {}
    for start in range(0, len(known), 1000):
        for row in session.scalars(select(ContactCrmStage).where(ContactCrmStage.contact_id.in_(
                known[start:start + 1000])).order_by(ContactCrmStage.changed_at.desc(), ContactCrmStage.pipeline)):
            stages.setdefault(row.contact_id, []).append(row)
    out = []
    for m in found:
        rows = stages.get(ids[m["phone"]], []) if ids[m["phone"]] is not None else []
        extra = {}
        for field, pipeline in wanted:
            row = next((r for r in rows if pipeline is None or r.pipeline == pipeline), None)
            value = getattr(row, field, "") if row is not None else ""
            if value:
                extra[crm_key(field, pipeline)] = str(value)
        out.append({**m, "variables": {**(m.get("variables") or {}), **extra}})
    return out


def with_contact_fields(session: Session, found: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """The members with their contacts' custom fields; a CSV row is the contact of its
    number, if the hub knows one."""
    ids = _contact_ids(session, found)
    values = fields_of_contacts(session, [i for i in ids.values() if i is not None], names)
    out = []
    for m in found:
        own = values.get(ids[m["phone"]], {}) if ids[m["phone"]] is not None else {}
        out.append({**m, "variables": {**(m.get("variables") or {}),
                                       **{f"contact.{n}": own[n] for n in names if n in own}}})
    return out


def definition(audience: Audience) -> dict[str, Any]:
    """What the audience is, as the verdict shows it before sending: a segment's filters,
    or a CSV's columns and its accepted and refused rows."""
    out: dict[str, Any] = {"id": audience.id, "name": audience.name, "kind": audience.kind}
    if audience.kind == "segment":
        out["segment"] = dict(audience.segment or {})
    else:
        out.update(columns=list(audience.columns or []), accepted=len(audience.rows or []),
                   refused=len(audience.refused or []))
    return out


def summary(audience: Audience) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for r in audience.refused or []:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"id": audience.id, "name": audience.name, "kind": audience.kind, "segment": audience.segment,
            "columns": list(audience.columns or []), "accepted": len(audience.rows or []),
            "refused": len(audience.refused or []), "refused_by_reason": reasons,
            "created_at": audience.created_at.isoformat()}
