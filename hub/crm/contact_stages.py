"""Each contact's CRM stage per pipeline, as the connector last reported it: kept in the
same transaction as deal.stage_changed (hub.crm.deal_outcomes), so audiences select
"everyone at stage X of pipeline Y" from the hub's own tables."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ContactCrmStage


def record(session: Session, *, contact_id: int, deal: dict[str, Any], connector_id: int | None,
           now: datetime) -> ContactCrmStage:
    """The deal's stage becomes the contact's stage in its pipeline; a report older than
    the one kept (a CRM resending late) changes nothing."""
    pipeline = (deal.get("pipeline") or "")[:64]
    row = session.get(ContactCrmStage, (contact_id, pipeline))
    if row is None:
        row = ContactCrmStage(contact_id=contact_id, pipeline=pipeline)
        session.add(row)
    elif row.changed_at > now:
        return row
    row.stage, row.stage_name = str(deal["stage"])[:64], (deal.get("stage_name") or "")[:200]
    row.outcome, row.deal_id, row.changed_at = deal["outcome"], str(deal["id"])[:64], now
    row.connector_id = connector_id if connector_id is not None else row.connector_id
    session.flush()
    return row


def of_contact(session: Session, contact_id: int) -> list[dict[str, Any]]:
    return [{"pipeline": r.pipeline or None, "stage": r.stage, "stage_name": r.stage_name, "outcome": r.outcome,
             "deal_id": r.deal_id, "changed_at": r.changed_at}
            for r in session.scalars(select(ContactCrmStage).where(ContactCrmStage.contact_id == contact_id)
                                     .order_by(ContactCrmStage.changed_at.desc(), ContactCrmStage.pipeline))]
