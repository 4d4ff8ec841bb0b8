"""The analytics destinations in the admin: each form from its Settings schema, in
Russian too, created through the form with its secret kept out of the page, bad goal
lines refused beside the field, and the mapping preview of a sample conversation."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.crm.store import full_settings
from hub.models import ConnectorRecord
from tests.support.admin import field_errors, post, signed_in

EVENTS = ["lead.attributed", "deal.stage_changed"]
FORMS = {
    "ga4": ({"measurement_id": "G-HUB0000001", "api_secret": "ga4-secret-value-1", "goals": "won -> purchase = amount",
             "currency": "USD", "endpoint": "http://127.0.0.1:9", "timeout_seconds": "5"}, "api_secret",
            "Идентификатор потока (Measurement ID)"),
    "meta_capi": ({"dataset_id": "1234567890123", "access_token": "EAAG-admin-token-1",
                   "whatsapp_business_account_id": "1100000000000001", "goals": "won -> Purchase = amount",
                   "currency": "USD", "graph_url": "http://127.0.0.1:9", "api_version": "v21.0",
                   "timeout_seconds": "5"}, "access_token", "ID набора данных"),
    "metrica": ({"counter_id": "44147844", "oauth_token": "y0_admin-metrica-token", "goals": "won -> deal_won = amount",
                 "currency": "RUB", "api_url": "http://127.0.0.1:9", "timeout_seconds": "5"}, "oauth_token",
                "Номер счётчика"),
    "roistat": ({"project": "12345", "api_key": "roistat-admin-key-1", "goals": "won -> paid = amount",
                 "statuses": "paid = Оплачен | paid", "api_url": "http://127.0.0.1:9", "timeout_seconds": "5"},
                "api_key", "Номер проекта"),
}


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_destination_form_creates_the_connector_and_speaks_russian(app, runtime, kind):
    data, secret_field, russian = FORMS[kind]
    admin = signed_in(app, runtime, "admin")
    r = post(admin, f"/admin/connectors/new/{kind}", {"name": kind, "enabled": "on", **data, "event_types": EVENTS},
             page=f"/admin/connectors/new/{kind}")
    assert r.status_code == 302, field_errors(r.get_data(as_text=True), "goals") or r.get_data(as_text=True)[:2000]
    with runtime.db.scope() as session:
        record = session.scalars(select(ConnectorRecord)).one()
        session.expunge(record)
    assert full_settings(record, runtime.vault)[secret_field] == data[secret_field]
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert data[secret_field] not in page
    preview = admin.get(f"/admin/connectors/{record.id}/preview").get_data(as_text=True)
    assert preview and data[secret_field] not in preview
    admin.get("/admin/language/ru?next=/admin/")
    assert russian in admin.get(f"/admin/connectors/new/{kind}").get_data(as_text=True)


def test_a_bad_goal_line_is_refused_beside_the_field_and_nothing_saved(app, runtime):
    data, _, _ = FORMS["ga4"]
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/connectors/new/ga4", {"name": "ga4", "enabled": "on", **data, "goals": "won => purchase",
                                                  "event_types": EVENTS},
             page="/admin/connectors/new/ga4")
    assert r.status_code in (200, 400, 422)
    assert any("line 1" in e for e in field_errors(r.get_data(as_text=True), "goals"))
    with runtime.db.scope() as session:
        assert session.scalars(select(ConnectorRecord)).all() == []
