"""Connectors: the form of each kind is generated from its Settings schema (labels,
help, choices, secrets masked and kept when left blank, choices loaded from the CRM when
the kind can list them); "Test connection" runs check(); the mapping preview shows what
a sample conversation would create; enable, disable, remove.

Calls to the outside service (check, choices, preview) happen outside any database
transaction, and whatever they return is scrubbed of the connector's secrets before it
reaches a page.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from connectors.base import Connector, UnknownConnectorKind, registry
from hub.crm.check import run_check
from hub.crm.store import (
    InvalidConnector, build_connector, create_connector, update_connector, validate_settings,
)
from hub.platform.db import utcnow
from hub.delivery import queries
from hub.events.outbox import EVENT_TYPES
from hub.models import ConnectorRecord
from hub.shared.security import redact_text
from hub.web.admin import bp, sample
from hub.web.admin.auth import ADMIN, roles
from hub.web.admin.connector_oauth import connect_offer
from hub.web.admin.forms import (
    FormField, fields_for, flatten_errors, hidden_fields, read_form, submitted_values, with_other_errors,
)
from hub.web.admin.views import pretty_json
from hub.web.lookups import current_runtime, db, detached_or_404, get_or_404

log = logging.getLogger(__name__)
OWN_FIELDS = ("name", "event_types")  # errors that belong to the connector, not its settings


def _kind(kind: str) -> type[Connector]:
    try:
        return registry.get(kind)
    except UnknownConnectorKind:
        abort(404)


def _detached(connector_id: int) -> ConnectorRecord:
    return detached_or_404(ConnectorRecord, connector_id)


def _secrets(record: ConnectorRecord) -> dict[str, Any]:
    return current_runtime().vault.decrypt(record.secrets_enc) if record.secrets_enc else {}


def scrub(text: str, record: ConnectorRecord) -> str:
    """A connector's own output may echo a token back: never let it reach a page."""
    values = [str(v) for v in _secrets(record).values() if v]
    return redact_text(text, values)


def event_choices(kind_cls: type[Connector]) -> list[str]:
    return [t for t in EVENT_TYPES if kind_cls.handles is None or t in kind_cls.handles]


def _check_rest(kind_cls: type[Connector], data: dict[str, Any], pre: dict[str, list[str]],
                record: ConnectorRecord | None) -> dict[str, list[str]]:
    """The kind's verdict on the settings that passed the first look."""
    merged = {**(record.settings if record else {}), **data}
    for name in pre:
        merged.pop(name, None)

    def validate() -> Any:
        try:
            validate_settings(kind_cls, merged, _secrets(record) if record else None)
        except InvalidConnector as exc:
            return exc.errors
        return {}
    return with_other_errors(pre, validate)


def _read_events(kind_cls: type[Connector]) -> tuple[list[str] | None, list[str]]:
    offered = event_choices(kind_cls)
    chosen = [t for t in request.form.getlist("event_types") if t in offered]
    if not chosen:
        return None, [str(_l("Choose at least one event."))]
    return (None if len(chosen) == len(offered) else chosen), []


@bp.get("/connectors")
def connectors() -> Any:
    with db().scope() as s:
        records = list(s.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id)))
        counts = {r.id: queries.counts(s, connector_id=r.id) for r in records}
    kinds = registry.kinds()
    return render_template("admin/connectors.html", connectors=records, counts=counts,
                           titles={k: c.title for k, c in kinds.items()})


@bp.get("/connectors/new")
@roles(*ADMIN)
def connector_kinds() -> Any:
    return render_template("admin/connector_kinds.html", kinds=registry.kinds())


def _form(kind_cls: type[Connector], record: ConnectorRecord | None, *, values: dict[str, Any] | None = None,
          errors: dict[str, list[str]] | None = None, submitted: bool = False, status: int = 200) -> Any:
    errors = errors or {}
    stored: set[str] = set()
    choices: dict[str, list[tuple[str, str]]] = {}
    choices_problem = None
    if record is not None:
        stored = set(_secrets(record))
        if values is None:
            values = {**record.settings, "name": record.name, "enabled": record.enabled}
        if hasattr(kind_cls, "choices"):
            choices, choices_problem = _load_choices(record)
    values = values or {}
    settings = fields_for(kind_cls.Settings, values=values, errors=errors, stored_secrets=stored,
                          loaded_choices=choices, submitted=submitted)
    if submitted:
        selected = set(request.form.getlist("event_types"))
    elif record is not None and record.event_types is not None:
        selected = set(record.event_types)
    else:
        selected = set(event_choices(kind_cls))
    known = {f.name for f in settings} | set(OWN_FIELDS) | {"enabled"}
    stray = [f"{k}: {' '.join(v)}" for k, v in errors.items() if k not in known and k != "_schema"]
    return render_template(
        "admin/connector_form.html", kind_cls=kind_cls, record=record, settings=settings,
        name=FormField(name="name", type="string", label=str(_l("Name")), required=True,
                       help=str(_l("How this connector is called in the hub (unique).")),
                       value=str(values.get("name") or ""), errors=errors.get("name", [])),
        enabled=values.get("enabled", True) if not submitted else "enabled" in request.form,
        events=event_choices(kind_cls), selected=selected, event_errors=errors.get("event_types", []),
        form_errors=errors.get("_schema", []) + stray, choices_problem=choices_problem,
    ), status


def _load_choices(record: ConnectorRecord) -> tuple[dict[str, list[tuple[str, str]]], str | None]:
    """Values the service offers (pipelines, stages, users), fetched now; a failure only
    means plain inputs instead of lists."""
    runtime = current_runtime()
    try:
        connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow,
                                    http_timeout=runtime.config.delivery.http_timeout_seconds)
        return connector.choices(), None  # type: ignore[attr-defined]
    except Exception as exc:
        log.warning("could not load choices of connector %s: %s", record.name, type(exc).__name__)
        return {}, scrub(f"{type(exc).__name__}: {exc}", record)


@bp.get("/connectors/new/<kind>")
@roles(*ADMIN)
def connector_new(kind: str) -> Any:
    return _form(_kind(kind), None)


@bp.post("/connectors/new/<kind>")
@roles(*ADMIN)
def connector_create(kind: str) -> Any:
    kind_cls = _kind(kind)
    data, errors = read_form(kind_cls.Settings, request.form, creating=True)
    name = request.form.get("name", "").strip()
    if not name:
        errors["name"] = [str(_l("Required."))]
    event_types, event_errors = _read_events(kind_cls)
    if event_errors:
        errors["event_types"] = event_errors
    if errors:
        errors = _check_rest(kind_cls, data, errors, None)
    else:
        try:
            with db().scope() as s:
                record = create_connector(s, current_runtime().vault, kind=kind, name=name, settings=data, now=utcnow(),
                                          enabled="enabled" in request.form, event_types=event_types)
                connector_id = record.id
        except InvalidConnector as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return _form(kind_cls, None, values=submitted_values(request.form), errors=errors, submitted=True,
                     status=422)
    flash(_("Connector added. Test the connection to see that it works."), "success")
    return redirect(url_for("admin.connector", connector_id=connector_id))


@bp.get("/connectors/<int:connector_id>")
def connector(connector_id: int) -> Any:
    runtime = current_runtime()
    with runtime.db.scope() as s:
        record = get_or_404(s, ConnectorRecord, connector_id)
        counts = queries.counts(s, connector_id=connector_id)
        oldest = queries.oldest_waiting(s, connector_id=connector_id)
        s.expunge(record)
    kind_cls = registry.find(record.kind)
    shown: list[tuple[str, Any]] = []
    secret_names: list[tuple[str, bool]] = []
    if kind_cls is not None:
        stored = set(_secrets(record))
        hidden = hidden_fields(kind_cls.Settings)
        for f in fields_for(kind_cls.Settings, values=record.settings, stored_secrets=stored):
            if f.secret:
                secret_names.append((f.label, f.is_set))
            elif f.name not in hidden:
                shown.append((f.label, f.value if f.type != "boolean" else f.checked))
    inbound_url = oauth_callback = None
    if current_user.role == "admin":
        inbound_url = f"{runtime.config.base_url.rstrip('/')}/webhooks/connectors/{record.webhook_key}"
        oauth_callback = connect_offer(record)
    return render_template(
        "admin/connector.html", record=record, kind_cls=kind_cls, shown=shown, secret_names=secret_names,
        counts=counts, queue_age=(utcnow() - oldest) if oldest else None, inbound_url=inbound_url,
        oauth_callback=oauth_callback,
        has_preview=kind_cls is not None and hasattr(kind_cls, "preview"),
    )


@bp.get("/connectors/<int:connector_id>/edit")
@roles(*ADMIN)
def connector_edit(connector_id: int) -> Any:
    record = _detached(connector_id)
    return _form(_kind(record.kind), record)


@bp.post("/connectors/<int:connector_id>/edit")
@roles(*ADMIN)
def connector_update(connector_id: int) -> Any:
    record = _detached(connector_id)
    kind_cls = _kind(record.kind)
    data, errors = read_form(kind_cls.Settings, request.form, creating=False)
    name = request.form.get("name", "").strip()
    if not name:
        errors["name"] = [str(_l("Required."))]
    event_types, event_errors = _read_events(kind_cls)
    if event_errors:
        errors["event_types"] = event_errors
    if errors:
        errors = _check_rest(kind_cls, data, errors, record)
    else:
        try:
            with db().scope() as s:
                fresh = get_or_404(s, ConnectorRecord, connector_id)
                if name != fresh.name and s.scalar(select(ConnectorRecord.id).where(ConnectorRecord.name == name)):
                    raise InvalidConnector({"name": [str(_l("A connector with this name already exists."))]})
                update_connector(s, current_runtime().vault, fresh, now=utcnow(), settings=data, name=name,
                                 enabled="enabled" in request.form, event_types=event_types)
        except InvalidConnector as exc:
            errors = flatten_errors(exc.errors)
    if errors:
        return _form(kind_cls, record, values=submitted_values(request.form), errors=errors, submitted=True,
                     status=422)
    flash(_("Connector saved."), "success")
    return redirect(url_for("admin.connector", connector_id=connector_id))


@bp.post("/connectors/<int:connector_id>/check")
@roles(*ADMIN)
def connector_check(connector_id: int) -> Any:
    """Test connection: runs check() now (no transaction open) and records health."""
    record = _detached(connector_id)
    result = run_check(current_runtime(), connector_id, now=utcnow())
    message = scrub(result.message, record)
    details = scrub(pretty_json(result.details), record) if result.details else ""
    if request.headers.get("HX-Request"):
        return render_template("admin/_check_result.html", ok=result.ok, message=message, details=details,
                               checked_at=utcnow())
    flash((_("Connection works: %(m)s", m=message) if result.ok else _("Connection failed: %(m)s", m=message)),
          "success" if result.ok else "error")
    return redirect(url_for("admin.connector", connector_id=connector_id))


@bp.get("/connectors/<int:connector_id>/preview")
def connector_preview(connector_id: int) -> Any:
    """What a sample conversation would make this connector do, without sending anything."""
    runtime = current_runtime()
    record = _detached(connector_id)
    kind_cls = _kind(record.kind)
    with runtime.db.scope() as s:
        events, conversation_id = sample.sample_events(s, utcnow())
    events = sample.for_connector(events, record.kind, record.event_types)
    planned = None
    problem = None
    if hasattr(kind_cls, "preview") and events:
        try:
            connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow,
                                        http_timeout=runtime.config.delivery.http_timeout_seconds)
            planned = [{**r, "body": scrub(pretty_json(r.get("body")), record) if r.get("body") is not None else "",
                        "params": scrub(pretty_json(r["params"]), record) if r.get("params") else ""}
                       for r in connector.preview(events)]  # type: ignore[attr-defined]
        except Exception as exc:
            log.warning("mapping preview of connector %s failed: %s", record.name, type(exc).__name__)
            problem = scrub(f"{type(exc).__name__}: {exc}", record)
    envelopes = [scrub(pretty_json(e.envelope()), record) for e in events]
    return render_template("admin/connector_preview.html", record=record, kind_cls=kind_cls, events=events,
                           envelopes=envelopes, planned=planned, problem=problem, conversation_id=conversation_id)


@bp.post("/connectors/<int:connector_id>/enabled")
@roles(*ADMIN)
def connector_enable(connector_id: int) -> Any:
    enabled = request.form.get("enabled") == "1"
    with db().scope() as s:
        record = get_or_404(s, ConnectorRecord, connector_id)
        update_connector(s, current_runtime().vault, record, now=utcnow(), enabled=enabled)
    flash(_("Connector enabled: new events go to it.") if enabled
          else _("Connector disabled: it receives no new events until enabled again."), "success")
    return redirect(url_for("admin.connector", connector_id=connector_id))


@bp.post("/connectors/<int:connector_id>/delete")
@roles(*ADMIN)
def connector_delete(connector_id: int) -> Any:
    with db().scope() as s:
        record = get_or_404(s, ConnectorRecord, connector_id)
        name = record.name
        s.delete(record)
    flash(_("Connector %(name)s removed with its queue.", name=name), "success")
    return redirect(url_for("admin.connectors"))
