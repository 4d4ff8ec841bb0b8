"""The delivery log: per connector and status, each delivery with its event, attempts,
last response (recorded redacted) and error; dead letters replayed one by one or all at
once; counts and the age of the oldest waiting event at the top."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.delivery import ledger, queries
from hub.models import ConnectorRecord
from hub.models.events import DELIVERY_STATUSES
from hub.shared.security import redact_text
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.views import pretty_json
from hub.web.lookups import current_runtime, db

PAGE = 50


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.get("/deliveries")
def deliveries() -> Any:
    status = request.args.get("status") or None
    if status not in (None, *DELIVERY_STATUSES):
        status = None
    connector_id = _int_arg("connector_id")
    before_id = _int_arg("before_id")
    with db().scope() as s:
        connectors = list(s.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id)))
        if connector_id is not None and connector_id not in {c.id for c in connectors}:
            abort(404)
        rows = queries.list_deliveries(s, status=status, connector_id=connector_id, before_id=before_id,
                                       limit=PAGE + 1)
        counts = queries.counts(s, connector_id=connector_id)
        oldest = queries.oldest_waiting(s, connector_id=connector_id)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    connector = next((c for c in connectors if c.id == connector_id), None)
    return render_template(
        "admin/deliveries.html", rows=rows, counts=counts, queue_age=(utcnow() - oldest) if oldest else None,
        oldest=oldest, status=status, statuses=DELIVERY_STATUSES, connectors=connectors, connector=connector,
        next_before=rows[-1]["id"] if more and rows else None,
    )


@bp.get("/deliveries/<int:delivery_id>")
def delivery(delivery_id: int) -> Any:
    runtime = current_runtime()
    with runtime.db.scope() as s:
        found = queries.show_delivery(s, delivery_id)
        if found is None:
            abort(404)
        record = s.get(ConnectorRecord, found["connector_id"])
        secrets = [str(v) for v in runtime.vault.decrypt(record.secrets_enc).values() if v] \
            if record.secrets_enc else []
    envelope = {"id": found["event"]["id"], "type": found["event"]["type"],
                "version": found["event"]["version"], "occurred_at": found["event"]["occurred_at"],
                "data": found["event"]["data"]}
    # Responses were redacted when recorded; scrub again in case a secret changed since.
    response = redact_text(pretty_json(found["last_response"]), secrets) if found["last_response"] else ""
    template = "admin/_delivery_detail.html" if request.headers.get("HX-Request") else "admin/delivery.html"
    return render_template(template, d=found, request_body=redact_text(pretty_json(envelope), secrets),
                           response=response, error=redact_text(found["last_error"] or "", secrets))


@bp.post("/deliveries/<int:delivery_id>/replay")
@roles(*ADMIN)
def delivery_replay(delivery_id: int) -> Any:
    with db().scope() as s:
        count = ledger.replay(s, now=utcnow(), ids=[delivery_id])
    if count:
        flash(_("Delivery %(id)s is back in the queue.", id=delivery_id), "success")
    else:
        flash(_("Delivery %(id)s is not a dead letter: nothing to replay.", id=delivery_id), "error")
    return redirect(request.form.get("back") if _safe(request.form.get("back"))
                    else url_for("admin.delivery", delivery_id=delivery_id))


@bp.post("/deliveries/replay")
@roles(*ADMIN)
def deliveries_replay() -> Any:
    """Every dead letter of one connector (or of all of them) back in the queue."""
    connector_id = request.form.get("connector_id", "")
    with db().scope() as s:
        count = ledger.replay(s, now=utcnow(), connector_id=int(connector_id) if connector_id.isdigit() else None)
    flash(ngettext("%(num)s dead letter is back in the queue.", "%(num)s dead letters are back in the queue.",
                   count), "success")
    args = {"connector_id": connector_id} if connector_id.isdigit() else {}
    return redirect(url_for("admin.deliveries", **args))


def _safe(target: str | None) -> bool:
    return bool(target) and target.startswith("/admin/") and "//" not in target
