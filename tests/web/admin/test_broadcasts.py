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


def promo_channel(runtime) -> dict[str, str]:
    """A WhatsApp channel with the approved template "promo", as the wizard's first step chooses them."""
    channel_id, _ = make_channel(runtime)
    with runtime.db.scope() as s:
        template = Template(waba_id=WABA_ID, name="promo", language="en", status="APPROVED", category="MARKETING",
                            components=[{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}])
        s.add(template)
        s.flush()
        return {"channel_id": str(channel_id), "template_id": str(template.id)}


@pytest.fixture
def setup(runtime):
    return promo_channel(runtime)


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
    assert "not a phone number" in page and "Hi {{1}}, code {{2}}" in page and 'value="column:first_name"' in page
    audience = audience_id(runtime)
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience, var_1="contact:name",
                                                                                value_1="")},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="verdict"' in page
    # the contact's name is unknown for new numbers: every row lacks it
    assert re.search(r'id="would-send">0<', page) and "template variables missing: 3" in page
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience)},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert re.search(r'id="would-send">2<', page) and "template variables missing: 1" in page \
        and "not a phone number: 1" in page
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
    assert results.count("+44770090012") == 2 and "cancelled" in results and "not a phone number" in results
    assert operator.get(f"{url}/results?status=bogus").status_code == 400
    skipped = operator.get(f"{url}/results?status=skipped").get_data(as_text=True)
    assert "+4915112345678" in skipped
    export = operator.get(f"{url}/results.csv")
    assert export.mimetype == "text/csv" and "attachment" in export.headers["Content-Disposition"]
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("phone,status,reason") and len(lines) == 1 + 3 + 1
    assert any(line.startswith("oops,skipped,bad_number") for line in lines)
    assert operator.get("/admin/broadcasts/999").status_code == 404


def segment_people(runtime, channel_id):
    """Ana (vip, Berlin, won in sales), Bob (new, Berlin), Cleo (vip, Moscow, lead in sales)."""
    from hub.conversations.tags_and_fields import change_fields, change_tags
    from hub.crm import contact_stages
    from hub.models import Contact, Conversation

    now = utcnow()
    with runtime.db.scope() as s:
        for i, (name, tag, city, stage) in enumerate([("Ana", "vip", "Berlin", ("142", "Won")),
                                                      ("Bob", "new", "Berlin", None),
                                                      ("Cleo", "vip", "Moscow", ("7", "Lead"))]):
            c = Contact(wa_id=f"4915100000{i}", phone=f"+4915100000{i}", name=name, created_at=now, updated_at=now)
            s.add(c)
            s.flush()
            s.add(Conversation(channel_id=int(channel_id), contact_id=c.id, status="open", opened_at=now,
                               last_inbound_at=now - timedelta(days=i), created_at=now, updated_at=now))
            change_tags(s, c.id, add=[tag], now=now)
            change_fields(s, c.id, {"city": city}, now=now)
            if stage:
                contact_stages.record(s, contact_id=c.id, connector_id=None, now=now, deal={
                    "id": f"d{i}", "stage": stage[0], "stage_name": stage[1], "pipeline": "sales", "outcome": "open"})


def test_the_audience_step_builds_a_segment_with_its_live_count(app, runtime, setup):
    segment_people(runtime, setup["channel_id"])
    operator = signed_in(app, runtime, "operator")
    page = operator.get("/admin/broadcasts/new").get_data(as_text=True)
    assert 'id="segment-builder"' in page and '<option value="city">city</option>' in page
    assert "Won · sales" in page and "Lead · sales" in page
    won = '{"stage": "142", "pipeline": "sales"}'

    def live(**fields):
        r = operator.get("/admin/broadcasts/segment-count", query_string=fields)
        assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
        return r.get_data(as_text=True)

    assert "Fill in a part" in live()
    assert "3 contacts match now" in live(seg_tags="vip, new")
    assert "2 contacts match now" in live(seg_tags="vip", seg_field_name="city")
    assert "1 contact matches now" in live(seg_field_name="city", seg_field_value="Berlin", seg_crm_stage=won)
    assert "2 contacts match now" in live(seg_within_days="2")
    assert "segment.tags_any[1]:" in live(seg_tags="vip, -x")
    assert "segment.field.name:" in live(seg_field_value="Berlin")
    assert "segment.crm_stage:" in live(seg_crm_stage="{oops")
    assert "segment.last_message_within_days:" in live(seg_within_days="-3")
    assert count(runtime, Audience) == 0  # counting writes nothing
    # a field no contact has is named, and nothing is saved
    r = post(operator, "/admin/broadcasts/new", {"step": "audience", "name": "Typo", **setup,
                                                  "seg_field_name": "town", "seg_field_value": ""},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "segment.field.name:" in page and 'id="step-audience"' in page
    assert count(runtime, Audience) == 0
    r = post(operator, "/admin/broadcasts/new", {"step": "audience", "name": "Berlin vips", **setup,
                                                  "seg_tags": "vip", "seg_field_name": "city",
                                                  "seg_field_value": "Berlin", "seg_crm_stage": won},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="step-compose"' in page, page[:3000]
    assert 'id="segment-members">1 contact matches now<' in page and "field city is Berlin" in page
    with runtime.db.scope() as s:
        audience = s.scalar(select(Audience))
        assert (audience.kind, audience.segment) == ("segment", {
            "tags_any": ["vip"], "field": [{"name": "city", "equals": "Berlin"}],
            "crm_stage": {"stage": "142", "pipeline": "sales"}})
        audience = str(audience.id)
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(
        setup, audience, var_1="contact:name", var_2="value", value_2="Z9")}, page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and re.search(r'id="would-send">1<', page) and "Hi Ana, code Z9" in page
    verdict = page[page.index('id="verdict-audience"'):page.index('id="would-send"')]
    for line in ("Audience: Berlin vips", "has any of the tags vip", "field city is Berlin",
                 "CRM stage Won (142) in pipeline sales"):
        assert line in verdict, verdict


def test_the_verdict_speaks_russian_including_the_skip_reasons(app, runtime, setup):
    from hub.broadcasts import consent
    from hub.models import Contact

    now = utcnow()
    with runtime.db.scope() as s:
        c = Contact(wa_id="447700900123", phone="+447700900123", name="Bob", created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        consent.record(s, c, "marketing", "opted_out", source="api", at=now, now=now)
    operator = signed_in(app, runtime, "operator")
    operator.get("/admin/language/ru?next=/admin/")
    data = (CSV + "+4915112345678;Ana;A1\n").encode("cp1251")
    upload(operator, setup, data=data)
    page = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience_id(runtime))},
                page="/admin/broadcasts/new").get_data(as_text=True)
    reasons = page[page.index('id="skipped-reasons"'):]
    reasons = reasons[:reasons.index("</ul>")]
    for label in ("не номер телефона: 1", "повтор номера: 1", "не хватает переменных шаблона: 1", "отписался: 1"):
        assert label in reasons, reasons
    assert not re.search(r"[a-z]+_[a-z]+", reasons), reasons  # no raw key left
    assert "Аудитория: December" in page and "принято строк" in page
    assert "<td>маркетинг</td>" in page  # the cost line's category
    saved = operator.get("/admin/broadcasts/new").get_data(as_text=True)
    assert "December (CSV, 2 строки)" in saved


def test_the_variable_picker_offers_the_crm_deal_and_the_verdict_fills_it(app, runtime, setup):
    from hub.crm import contact_stages
    from hub.models import Contact

    now = utcnow()
    with runtime.db.scope() as s:
        ana = Contact(wa_id="4915112345678", phone="+4915112345678", name="Ana", created_at=now, updated_at=now)
        s.add(ana)
        s.flush()
        contact_stages.record(s, contact_id=ana.id, connector_id=None, now=now, deal={
            "id": "D-5", "stage": "5", "stage_name": "Offer sent", "pipeline": "", "outcome": "open"})
    operator = signed_in(app, runtime, "operator")
    page = upload(operator, setup).get_data(as_text=True)
    assert 'value="crm:stage_name"' in page and 'value="crm:deal_id"' in page
    r = post(operator, "/admin/broadcasts/new", {"step": "verdict", **compose(setup, audience_id(runtime),
                                                                                var_2="crm:stage_name")},
             page="/admin/broadcasts/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Hi Ana, code Offer sent" in page
    assert re.search(r'id="would-send">1<', page) and "template variables missing: 2" in page
