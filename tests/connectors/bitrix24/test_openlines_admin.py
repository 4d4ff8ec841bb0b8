"""The connector form: Open Lines through an incoming webhook is refused beside the mode
field with the reason, and the open line picker is filled from the portal."""
from __future__ import annotations

from sqlalchemy import select

from connectors.bitrix24.settings import Bitrix24Settings
from hub.events.outbox import EVENT_TYPES
from hub.models import ConnectorRecord
from tests.support.admin import field_errors, post, signed_in


def test_open_lines_through_an_incoming_webhook_is_refused_in_the_form(app, runtime, portal):
    admin = signed_in(app, runtime, "admin")
    defaults = {name: ("" if f.load_default is None else str(f.load_default))
                for name, f in Bitrix24Settings._declared_fields.items() if not callable(f.load_default)}
    data = {**defaults, "name": "b24", "enabled": "on", "event_types": list(EVENT_TYPES), "portal_url": portal.base_url,
            "auth_mode": "webhook", "webhook_url": portal.webhook_url, "mode": "openlines",
            "openlines_connector_id": "whatsapp_hub", "openlines_line_id": "1"}
    r = post(admin, "/admin/connectors/new/bitrix24", data, page="/admin/connectors/new/bitrix24")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    errors = field_errors(page, "mode")
    assert len(errors) == 1
    assert "OAuth app connection" in errors[0] and "incoming webhook" in errors[0]
    with runtime.db.scope() as session:
        assert session.scalars(select(ConnectorRecord)).all() == []
    r = post(admin, "/admin/connectors/new/bitrix24", {**data, "mode": "timeline"}, page="/admin/connectors/new/bitrix24")
    assert r.status_code in (200, 302, 303), r.get_data(as_text=True)[:500]
    with runtime.db.scope() as session:
        record = session.scalars(select(ConnectorRecord)).one()
    page = admin.get(f"/admin/connectors/{record.id}/edit").get_data(as_text=True)
    assert "WhatsApp sales" in page and "Support" in page  # the line picker, from imopenlines.config.list.get
