"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from hub.web.metrics import make_registry
from migrations.apply import current_revision, head_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers: nothing else is checked, so a slow database never gets a
    healthy process restarted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to take traffic: the database answers and its schema is current."""
    runtime = current_app.extensions["hub"]
    try:
        with runtime.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(runtime.db.engine)
    except Exception as exc:
        return jsonify(status="unavailable", problem=f"database unreachable: {type(exc).__name__}"), 503
    head = head_revision()
    if current != head:
        return jsonify(status="unavailable",
                       problem=f"database schema at {current}, code expects {head}: run `hub migrate`"), 503
    return jsonify(status="ok", schema=current)


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions.get("hub.metrics")
    if registry is None:
        registry = current_app.extensions["hub.metrics"] = make_registry(current_app.extensions["hub"].db)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
