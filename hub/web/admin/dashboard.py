"""The overview: what is connected, what is waiting, and what to do next."""
from __future__ import annotations

from typing import Any

from flask import current_app, render_template
from flask_login import current_user
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.delivery import queries
from hub.models import Channel, ConnectorRecord, Conversation
from hub.web.admin import bp


@bp.get("/")
def dashboard() -> Any:
    runtime = current_app.extensions["hub"]
    with runtime.db.scope() as s:
        channels = list(s.scalars(select(Channel).order_by(Channel.id)))
        connectors = list(s.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id)))
        counts = queries.counts(s)
        oldest = queries.oldest_waiting(s)
        open_conversations = s.scalar(select(func.count()).select_from(Conversation)
                                      .where(Conversation.status == "open"))
        unassigned = s.scalar(select(func.count()).select_from(Conversation)
                              .where(Conversation.status == "open", Conversation.assignee_id.is_(None)))
        mine = s.scalar(select(func.count()).select_from(Conversation)
                        .where(Conversation.status == "open", Conversation.assignee_id == current_user.id))
    return render_template(
        "admin/dashboard.html", channels=channels, connectors=connectors, counts=counts,
        queue_age=(utcnow() - oldest) if oldest else None, open_conversations=open_conversations,
        unassigned=unassigned, mine=mine,
    )
