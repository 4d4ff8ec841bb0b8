"""Broadcasts in the admin: the wizard (CSV upload, variables and schedule, verdict,
confirm), the progress page with its actions, and the results with their CSV export.
Roles and CSRF hold; bad input shows the error naming the rows and fields and saves
nothing."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Audience, Broadcast, BroadcastRecipient, Template
from tests.support.admin import post, signed_in
from tests.support.whatsapp import WABA_ID, make_channel

CSV = "phone;first_name;code\n+4915112345678;Ana;A1\n+447700900123;Bob;B2\noops;X;Y\n+447700900124;;C3\n"


@pytest.fixture
def setup(runtime):
    channel_id, _ = make_channel(runtime)
    with runtime.db.scope() as s:
        template = Template(waba_id=WABA_ID, name="promo", language="en", status="APPROVED", category="MARKETING",
                            components=[{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}])
        s.add(template)
        s.flush()
        return {"channel_id": str(channel_id), "template_id": str(template.id)}


def count(runtime, model):
    with runtime.db.scope() as s:
        return s.scalar(select(func.count()).select_from(model))


def upload(client, setup, data: bytes = CSV.encode("cp1251")):
    return post(client, "/admin/broadcasts/new",
                {"step": "audience", "name": "December", **setup, "region": "",
                 "csv_file": (io.BytesIO(data), "list.csv")},
                page="/admin/broadcasts/new", content_type="multipart/form-data")


def audience_id(runtime) -> str:
    with runtime.db.scope() as s:
        return str(s.scalar(select(Audience.id)))


def compose(setup, audience, **extra):
    return {"name": "December", **setup, "audience_id": audience, "var_1": "column:first_name",
            "var_2": "column:code", "value_1": "", "value_2": "", "timezone": "Europe/Moscow",
            "window_start": "09:00", "window_end": "21:00", "failure_threshold": "20", "header": "",
            "allowed_days": ["1", "2", "3", "4", "5"], **extra}


def test_wizard_uploads_shows_the_refusals_then_the_verdict_then_creates(app, runtime, setup):
    operator = signed_in(app, runtime, "operator")
    r = upload(operator, setup)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="step-compose"' in page
    assert "bad_number" in page and "Hi {{1}}, code {{2}}" in page and 'value="column:first_name"' in page
    audience = audience_id(runtime)
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience, var_1="contact:name",
                                                                                value_1="")},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="verdict"' in page
    # the contact's name is unknown for new numbers: every row lacks it
    assert re.search(r'id="would-send">0<', page) and "missing_variables: 3" in page
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience)},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert re.search(r'id="would-send">2<', page) and "missing_variables: 1" in page and "bad_number: 1" in page
    assert "Hi Ana, code A1" in page
    assert count(runtime, Broadcast) == 0
    # the empty first_name of one row refuses the broadcast, naming that row; nothing saved
    r = post(operator, "/admin/broadcasts/new", {"step": "create", "launch": "0", **compose(setup, audience)},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "variables:" in page and "row 5 (+447700900124) lacks" in page
    assert count(runtime, Broadcast) == 0 and count(runtime, BroadcastRecipient) == 0
    r = post(operator, "/admin/broadcasts/new",
             {"step": "create", "launch": "1", **compose(setup, audience, var_1="value", value_1="friend")},
             page="/admin/broadcasts/new")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    with runtime.db.scope() as s:
        b = s.scalar(select(Broadcast))
        assert (b.status, b.timezone, b.allowed_days, b.window_start, b.failure_threshold) == (
            "scheduled", "Europe/Moscow", [1, 2, 3, 4, 5], "09:00", 0.2)
        assert b.variables == [{"value": "friend"}, {"column": "code"}]
        assert s.scalar(select(func.count()).select_from(BroadcastRecipient)) == 3
    assert r.headers["Location"].endswith(f"/admin/broadcasts/{b.id}")


def test_csv_with_no_phone_column_names_the_columns_and_saves_nothing(app, runtime, setup):
    operator = signed_in(app, runtime, "operator")
    r = upload(operator, setup, data=b"name,city\nAna,Berlin\n")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "phone:" in page and "city" in page and 'id="step-audience"' in page
    assert count(runtime, Audience) == 0


def test_schedule_in_the_past_is_named_at_the_verdict_and_nothing_saved(app, runtime, setup):
    operator = signed_in(app, runtime, "operator")
    upload(operator, setup)
    audience = audience_id(runtime)
    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for step in ("verdict", "create"):
        r = post(operator, "/admin/broadcasts/new",
                 {"step": step, "launch": "1", **compose(setup, audience, start_at=yesterday, timezone="UTC",
                                                         var_1="value", value_1="friend")},
                 page="/admin/broadcasts/new")
        page = r.get_data(as_text=True)
        assert r.status_code == 422 and "start_at:" in page and "is in the past" in page
        assert 'id="step-compose"' in page and 'id="verdict"' not in page
    r = post(operator, "/admin/broadcasts/new",
             {"step": "verdict", **compose(setup, audience, window_start="22:00", window_end="08:00")},
             page="/admin/broadcasts/new")
    assert r.status_code == 422 and "window_end:" in r.get_data(as_text=True)
    assert count(runtime, Broadcast) == 0


def test_viewers_read_but_cannot_make_or_steer_and_posts_need_csrf(app, runtime, setup):
    operator = signed_in(app, runtime, "operator")
    upload(operator, setup)
    post(operator, "/admin/broadcasts/new",
         {"step": "create", "launch": "0", **compose(setup, audience_id(runtime), var_1="value", value_1="x")},
         page="/admin/broadcasts/new")
    with runtime.db.scope() as s:
        broadcast_id = s.scalar(select(Broadcast.id))
    viewer = signed_in(app, runtime, "viewer")
    listing = viewer.get("/admin/broadcasts").get_data(as_text=True)
    assert "December" in listing and "/admin/broadcasts/new" not in listing
    viewer.get("/admin/language/ru?next=/admin/")
    russian = viewer.get("/admin/broadcasts").get_data(as_text=True)
    assert "Рассылки" in russian and "Получатели" in russian
    viewer.get("/admin/language/en?next=/admin/")
    page = viewer.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert 'id="broadcast-progress"' in page and "/start" not in page
    assert viewer.get("/admin/broadcasts/new").status_code == 403
    assert post(viewer, f"/admin/broadcasts/{broadcast_id}/start", page="/admin/").status_code == 403
    assert operator.post(f"/admin/broadcasts/{broadcast_id}/start").status_code == 400  # no CSRF token
    with runtime.db.scope() as s:
        assert s.get(Broadcast, broadcast_id).status == "draft"


def test_progress_actions_and_results_with_csv_export(app, runtime, setup):
    operator = signed_in(app, runtime, "operator")
    upload(operator, setup)
    post(operator, "/admin/broadcasts/new",
         {"step": "create", "launch": "0", **compose(setup, audience_id(runtime), var_1="value", value_1="x")},
         page="/admin/broadcasts/new")
    with runtime.db.scope() as s:
        broadcast_id = s.scalar(select(Broadcast.id))
    url = f"/admin/broadcasts/{broadcast_id}"
    page = operator.get(url).get_data(as_text=True)
    assert "0 of 3 done" in page and 'data-status="pending"><span class="n">3<' in page
    for action, status in (("start", "scheduled"), ("pause", "paused"), ("resume", "scheduled"),
                           ("cancel", "cancelled")):
        assert post(operator, f"{url}/{action}", page=url).status_code == 302
        with runtime.db.scope() as s:
            assert s.get(Broadcast, broadcast_id).status == status
    r = post(operator, f"{url}/resume", page=url, follow_redirects=True)
    assert "a cancelled broadcast cannot resume" in r.get_data(as_text=True)
    fragment = operator.get(f"{url}/progress").get_data(as_text=True)
    assert "<html" not in fragment and "3 of 3 done" in fragment
    results = operator.get(f"{url}/results").get_data(as_text=True)
    assert results.count("+44770090012") == 2 and "cancelled" in results and "bad_number" in results
    assert operator.get(f"{url}/results?status=bogus").status_code == 400
    skipped = operator.get(f"{url}/results?status=skipped").get_data(as_text=True)
    assert "+4915112345678" in skipped
    export = operator.get(f"{url}/results.csv")
    assert export.mimetype == "text/csv" and "attachment" in export.headers["Content-Disposition"]
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("phone,status,reason") and len(lines) == 1 + 3 + 1
    assert any(line.startswith("oops,skipped,bad_number") for line in lines)
    assert operator.get("/admin/broadcasts/999").status_code == 404
