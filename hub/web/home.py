"""The landing page: where the hub is and what to do next."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import func, select

from hub.models import Channel, ConnectorRecord, Delivery, User

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    runtime = current_app.extensions["hub"]
    with runtime.db.scope() as session:
        counts = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        connectors = session.scalar(select(func.count()).select_from(ConnectorRecord))
        channels = session.scalar(select(func.count()).select_from(Channel))
        users = session.scalar(select(func.count()).select_from(User))
    return render_template(
        "home.html",
        base_url=runtime.config.base_url,
        deliveries=counts,
        connectors=connectors,
        channels=channels,
        has_users=bool(users),
    )
