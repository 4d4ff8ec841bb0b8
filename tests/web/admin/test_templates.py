"""Templates in the admin: the synced list with status, category and quality, filters,
and a preview with variables (any role: nothing is sent)."""
from __future__ import annotations

from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import Template
from tests.support.admin import post, signed_in
from tests.support.whatsapp import WABA_ID, make_channel


def add_templates(runtime):
    with runtime.db.scope() as s:
        s.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED", category="UTILITY",
                       quality_score="GREEN", parameter_format="POSITIONAL", synced_at=utcnow(),
                       components=[{"type": "HEADER", "format": "IMAGE"},
                                   {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
                       created_at=utcnow(), updated_at=utcnow()))
        s.add(Template(waba_id=WABA_ID, name="winter_sale", language="ru", status="REJECTED", category="MARKETING",
                       status_reason="INVALID_FORMAT", parameter_format="NAMED",
                       components=[{"type": "BODY", "text": "Привет, {{name}}!"}],
                       created_at=utcnow(), updated_at=utcnow()))
    with runtime.db.scope() as s:
        return {t.name: t.id for t in s.scalars(select(Template))}


def test_list_shows_status_category_quality_and_filters(app, runtime):
    channel_id, _ = make_channel(runtime)
    ids = add_templates(runtime)
    viewer = signed_in(app, runtime, "viewer")
    page = viewer.get("/admin/templates").get_data(as_text=True)
    assert "order_update" in page and "winter_sale" in page and "INVALID_FORMAT" in page
    assert 'class="badge good">APPROVED' in page and 'class="badge bad">REJECTED' in page and "GREEN" in page
    assert "Sales" in page  # the account's number
    approved = viewer.get("/admin/templates?status=APPROVED").get_data(as_text=True)
    assert "order_update" in approved and "winter_sale" not in approved
    marketing = viewer.get("/admin/templates?category=MARKETING").get_data(as_text=True)
    assert "winter_sale" in marketing and "order_update" not in marketing
    by_name = viewer.get(f"/admin/templates?name=WINTER&channel_id={channel_id}").get_data(as_text=True)
    assert "winter_sale" in by_name and "order_update" not in by_name
    assert viewer.get("/admin/templates?channel_id=999").status_code == 404
    assert ids


def test_preview_with_variables(app, runtime):
    make_channel(runtime)
    ids = add_templates(runtime)
    viewer = signed_in(app, runtime, "viewer")
    page = viewer.get(f"/admin/templates/{ids['order_update']}").get_data(as_text=True)
    assert "Hi {{1}}, order {{2}} has shipped." in page and 'name="body_1"' in page and 'name="header_link"' in page
    r = post(viewer, f"/admin/templates/{ids['order_update']}",
             {"body_1": "Ana", "body_2": "42", "header_link": "https://shop.example/p.jpg"}, page="/admin/")
    text = r.get_data(as_text=True)
    assert "Hi Ana, order 42 has shipped." in text and 'class="error' not in text
    fragment = post(viewer, f"/admin/templates/{ids['order_update']}", {"body_1": "Ana"}, page="/admin/",
                    headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Hi Ana, order {{2}} has shipped." in fragment and "error" in fragment
    rejected = post(viewer, f"/admin/templates/{ids['winter_sale']}", {"body_name": "Оля"}, page="/admin/")
    assert "Привет, Оля!" in rejected.get_data(as_text=True)
    assert "is REJECTED, not APPROVED" in rejected.get_data(as_text=True)


def test_preview_needs_csrf(app, runtime):
    make_channel(runtime)
    ids = add_templates(runtime)
    viewer = signed_in(app, runtime, "viewer")
    assert viewer.post(f"/admin/templates/{ids['order_update']}", data={"body_1": "x"}).status_code == 400
