"""Creating, updating and instantiating configured connectors.

Settings are validated with the kind's own Settings schema; fields marked secret are
split off and encrypted, and a secret left blank on update keeps its stored value (forms
never show secrets back, so blank means "unchanged").
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from marshmallow import ValidationError
from marshmallow.experimental.context import Context
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import (
    TEMPLATES_CONTEXT_KEY, Connector, ConnectorContext, SettingsUpdate, registry, secret_fields,
)
from hub.platform.db import Database
from hub.events.outbox import EVENT_TYPES
from hub.shared.http import TimeoutSession
from hub.crm.links import DbLinkStore
from hub.models import ConnectorRecord, Delivery
from hub.platform.ratelimit import SlidingWindow, TokenBucket
from hub.shared.security import Vault, random_key


class InvalidConnector(ValueError):
    """Bad input for a connector; `errors` maps field names to messages."""

    def __init__(self, errors: Mapping[str, Any]):
        self.errors = dict(errors)
        parts = [f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in self.errors.items()]
        super().__init__("; ".join(parts))


def _validate_event_types(event_types: list[str] | None, kind_cls: type[Connector]) -> None:
    if event_types is None:
        return
    known = set(EVENT_TYPES) if kind_cls.handles is None else set(kind_cls.handles)
    unknown = [t for t in event_types if t not in known]
    if unknown:
        raise InvalidConnector(
            {"event_types": [f"not events this connector handles: {', '.join(unknown)}; "
                             f"choose from {', '.join(sorted(known))}"]}
        )


def stored_templates(session: Session) -> list[dict[str, Any]]:
    """The templates connectors may check their rules against (TEMPLATES_CONTEXT_KEY)."""
    from hub.channels.whatsapp.templates.parameters import body_parameters
    from hub.models import Template

    return [{"name": t.name, "language": t.language, "status": t.status, "parameters": body_parameters(t)}
            for t in session.scalars(select(Template).where(Template.status != "DELETED"))]


def validate_settings(
    kind_cls: type[Connector], data: Mapping[str, Any], stored_secrets: Mapping[str, Any] | None = None,
    *, templates: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load `data` with the kind's schema; returns (plain settings, secrets). With
    `templates` (none synced yet: None), rules are checked against them too."""
    secrets_ = secret_fields(kind_cls.Settings)
    data = dict(data)
    for name in secrets_:
        if stored_secrets and name in stored_secrets and not data.get(name):
            data[name] = stored_secrets[name]
    try:
        if templates:
            with Context({TEMPLATES_CONTEXT_KEY: templates}):
                loaded = kind_cls.Settings().load(data)
        else:
            loaded = kind_cls.Settings().load(data)
    except ValidationError as exc:
        raise InvalidConnector(exc.messages) from None
    plain = {k: v for k, v in loaded.items() if k not in secrets_}
    hidden = {k: v for k, v in loaded.items() if k in secrets_ and v not in (None, "")}
    return plain, hidden


def create_connector(
    session: Session,
    vault: Vault,
    *,
    kind: str,
    name: str,
    settings: Mapping[str, Any],
    now: datetime,
    enabled: bool = True,
    event_types: list[str] | None = None,
) -> ConnectorRecord:
    kind_cls = registry.get(kind)
    if not name or not name.strip():
        raise InvalidConnector({"name": ["must not be empty"]})
    _validate_event_types(event_types, kind_cls)
    plain, hidden = validate_settings(kind_cls, settings, templates=stored_templates(session))
    if session.scalar(select(ConnectorRecord.id).where(ConnectorRecord.name == name)):
        raise InvalidConnector({"name": [f"a connector named {name!r} already exists"]})
    record = ConnectorRecord(
        kind=kind,
        name=name.strip(),
        enabled=enabled,
        settings=plain,
        secrets_enc=vault.encrypt(hidden),
        event_types=event_types,
        webhook_key=random_key(),
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        raise InvalidConnector({"name": [f"a connector named {name!r} already exists"]}) from None
    return record


def update_connector(
    session: Session,
    vault: Vault,
    record: ConnectorRecord,
    *,
    now: datetime,
    settings: Mapping[str, Any] | None = None,
    name: str | None = None,
    enabled: bool | None = None,
    event_types: list[str] | None | type[Ellipsis] = ...,
) -> ConnectorRecord:
    kind_cls = registry.get(record.kind)
    if settings is not None:
        merged = {**record.settings, **settings}
        plain, hidden = validate_settings(kind_cls, merged, vault.decrypt(record.secrets_enc),
                                          templates=stored_templates(session))
        record.settings = plain
        record.secrets_enc = vault.encrypt(hidden)
        # New settings may cure what deliveries were waiting on (a revoked token): try now.
        session.execute(
            update(Delivery).where(Delivery.connector_id == record.id, Delivery.status == "pending",
                                   Delivery.next_attempt_at > now)
            .values(next_attempt_at=now).execution_options(synchronize_session=False)
        )
    if name is not None:
        if not name.strip():
            raise InvalidConnector({"name": ["must not be empty"]})
        record.name = name.strip()
    if enabled is not None:
        record.enabled = enabled
    if event_types is not ...:
        _validate_event_types(event_types, kind_cls)  # type: ignore[arg-type]
        record.event_types = event_types  # type: ignore[assignment]
    record.updated_at = now
    return record


def full_settings(record: ConnectorRecord, vault: Vault) -> dict[str, Any]:
    """Plain settings and decrypted secrets together, for the connector instance only."""
    return {**record.settings, **vault.decrypt(record.secrets_enc)}


def update_settings_locked(
    db: Database, vault: Vault, connector_id: int, fn: SettingsUpdate, *, now: datetime
) -> dict[str, Any]:
    """Run fn(fresh settings) under a lock on the connector row and save what it returns,
    in one transaction; returns the settings now stored."""
    with db.scope() as session:
        record = session.scalar(
            select(ConnectorRecord).where(ConnectorRecord.id == connector_id).with_for_update()
        )
        if record is None:
            raise LookupError(f"connector {connector_id} no longer exists")
        current = full_settings(record, vault)
        changes = fn(dict(current))
        if not changes:
            return current
        kind_cls = registry.get(record.kind)
        plain, hidden = validate_settings(kind_cls, {**current, **changes})
        # updated_at is left alone (set to itself, so `onupdate` does not fire): a token
        # rotation is not a configuration change and must not rebuild every worker's instance.
        session.execute(
            update(ConnectorRecord).where(ConnectorRecord.id == connector_id)
            .values(settings=plain, secrets_enc=vault.encrypt(hidden), updated_at=ConnectorRecord.updated_at)
            .execution_options(synchronize_session=False)
        )
        return {**plain, **hidden}


def set_health(db: Database, connector_id: int, ok: bool, message: str, *, now: datetime) -> None:
    """Health is a report, not a configuration change: updated_at stays as it was."""
    with db.scope() as session:
        session.execute(
            update(ConnectorRecord).where(ConnectorRecord.id == connector_id)
            .values(health="ok" if ok else "unhealthy", health_message=message, health_checked_at=now,
                    updated_at=ConnectorRecord.updated_at)
            .execution_options(synchronize_session=False)
        )


def build_connector(
    db: Database,
    vault: Vault,
    record: ConnectorRecord,
    *,
    clock: Any,
    http_timeout: float,
    base_url: str = "",
) -> Connector:
    kind_cls = registry.get(record.kind)
    connector_id = record.id

    def limiter(name: str, rate: float, burst: float) -> TokenBucket:
        return TokenBucket(db, f"connector:{connector_id}:{name}", rate=rate, burst=burst, clock=clock)

    def window_limiter(name: str, limit: int, seconds: float) -> SlidingWindow:
        return SlidingWindow(db, f"connector:{connector_id}:{name}", limit=limit, window=seconds, clock=clock)

    ctx = ConnectorContext(
        connector_id=record.id,
        name=record.name,
        settings=full_settings(record, vault),
        links=DbLinkStore(db, record.id),
        http=TimeoutSession(http_timeout),
        clock=clock,
        http_timeout=http_timeout,
        update_settings=lambda fn: update_settings_locked(db, vault, connector_id, fn, now=clock()),
        limiter=limiter,
        window_limiter=window_limiter,
        mark_health=lambda ok, message: set_health(db, connector_id, ok, message, now=clock()),
        webhook_url=f"{base_url.rstrip('/')}/webhooks/connectors/{record.webhook_key}" if base_url else "",
    )
    return kind_cls(ctx)
