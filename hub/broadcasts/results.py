"""Results of a broadcast: counts and funnel, per-recipient rows (the CSV's refused rows
too), cost, and the failures worth sending again."""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.broadcasts.meta_errors import explain, retryable
from hub.models import Audience, Broadcast, BroadcastRecipient, Message

STATUSES = ("pending", "queued", "sent", "delivered", "read", "replied", "failed", "skipped")


def counts(session: Session, broadcast_id: int) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for status, n in session.execute(select(BroadcastRecipient.status, func.count()).where(
            BroadcastRecipient.broadcast_id == broadcast_id).group_by(BroadcastRecipient.status)):
        out[status] = n
    return out


def funnel(session: Session, broadcast: Broadcast) -> dict[str, Any]:
    """Each stage counts everyone who got at least that far (a reply was also read, ...)."""
    c = counts(session, broadcast.id)
    replied = c["replied"]
    read = c["read"] + replied
    delivered = c["delivered"] + read
    sent = c["sent"] + delivered
    cost, currency = session.execute(
        select(func.sum(Message.cost), func.max(Message.currency)).join(
            BroadcastRecipient, BroadcastRecipient.message_id == Message.id).where(
            BroadcastRecipient.broadcast_id == broadcast.id)).one()
    refused = 0
    if broadcast.audience_id is not None and broadcast.retry_of_id is None:
        audience = session.get(Audience, broadcast.audience_id)
        refused = len(audience.refused or []) if audience is not None else 0
    return {"recipients": sum(c.values()), "counts": c, "refused_at_upload": refused,
            "funnel": {"sent": sent, "delivered": delivered, "read": read, "replied": replied,
                       "failed": c["failed"], "skipped": c["skipped"]},
            "cost": {"total": str(Decimal(cost or 0)), "currency": currency}}


def rows(session: Session, broadcast: Broadcast, *, status: str | None = None, limit: int | None = None,
         offset: int = 0) -> Iterator[dict[str, Any]]:
    r = BroadcastRecipient
    query = (select(r.id, r.phone, r.status, r.reason, r.error_code, r.message_id, r.queued_at,
                    Message.wa_message_id, Message.error_title, Message.cost, Message.currency)
             .outerjoin(Message, Message.id == r.message_id)
             .where(r.broadcast_id == broadcast.id).order_by(r.id).offset(offset))
    if status:
        query = query.where(r.status == status)
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query):
        yield {"id": row.id, "phone": row.phone, "status": row.status, "reason": row.reason,
               "error_code": row.error_code,
               "error": explain(row.error_code, row.error_title) if row.error_code else None,
               "message_id": row.message_id, "wa_message_id": row.wa_message_id,
               "cost": str(row.cost) if row.cost is not None else None, "currency": row.currency}


def refused_rows(session: Session, broadcast: Broadcast) -> list[dict[str, Any]]:
    if broadcast.audience_id is None or broadcast.retry_of_id is not None:
        return []
    audience = session.get(Audience, broadcast.audience_id)
    return list(audience.refused or []) if audience is not None else []


CSV_COLUMNS = ("phone", "status", "reason", "error_code", "error", "wa_message_id", "cost", "currency")


def export_csv(session: Session, broadcast: Broadcast) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows(session, broadcast):
        writer.writerow([row[c] if row[c] is not None else "" for c in CSV_COLUMNS])
    for row in refused_rows(session, broadcast):
        writer.writerow([row["phone"], "skipped", f"{row['reason']}: {row['detail']} (CSV row {row['row']})",
                         "", "", "", "", ""])
    return out.getvalue()


def retryable_failures(session: Session, broadcast: Broadcast) -> list[dict[str, Any]]:
    """The failed recipients whose error may pass another time (131049, 130472, ...)."""
    r = BroadcastRecipient
    return [{"phone": row.phone, "variables": row.variables or {}, "contact_id": row.contact_id}
            for row in session.execute(select(r.phone, r.variables, r.contact_id, r.error_code).where(
                r.broadcast_id == broadcast.id, r.status == "failed").order_by(r.id))
            if retryable(row.error_code)]

