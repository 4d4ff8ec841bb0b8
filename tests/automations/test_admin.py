"""The automations admin: list with statistics, a draft from an example, save and publish
with problems named by path, rollback, and the simulator (nothing sent or stored)."""
import json
import re

from sqlalchemy import func, select

from hub.models import Message, Run, Scenario, ScenarioVersion
from tests.support.admin import post, signed_in


def test_examples_drafts_publish_and_rollback(app, runtime):
    admin = signed_in(app, runtime, "admin")
    page = admin.get("/admin/automations")
    assert page.status_code == 200 and "lead_qualification" in page.get_data(as_text=True)
    r = post(admin, "/admin/automations/new", {"example": "order_status"}, page="/admin/automations")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        scenario = s.scalar(select(Scenario))
        sid, document = scenario.id, scenario.draft
    html = admin.get(f"/admin/automations/{sid}").get_data(as_text=True)
    assert "shipped" in html and "draft only" in html
    bad = {**document, "steps": [{"id": "a", "type": "text", "text": "x", "next": "gone"}]}
    r = post(admin, f"/admin/automations/{sid}", {"document": json.dumps(bad), "publish": "1"},
             page=f"/admin/automations/{sid}")
    assert r.status_code == 422 and "steps[0] (a).next: no step &#39;gone&#39;" in r.get_data(as_text=True)
    r = post(admin, f"/admin/automations/{sid}", {"document": "{not json"}, page=f"/admin/automations/{sid}")
    assert r.status_code == 422 and "not JSON" in r.get_data(as_text=True)
    for text in ("first", "second"):
        good = {**document, "steps": [{"id": "a", "type": "text", "text": text}]}
        r = post(admin, f"/admin/automations/{sid}", {"document": json.dumps(good), "publish": "1"},
                 page=f"/admin/automations/{sid}")
        assert r.status_code == 302
    r = post(admin, f"/admin/automations/{sid}/rollback", {"version": "1"}, page=f"/admin/automations/{sid}")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        live = s.get(ScenarioVersion, s.get(Scenario, sid).published_version_id)
        assert live.number == 1 and s.scalar(select(func.count()).select_from(ScenarioVersion)) == 2
    viewer = signed_in(app, runtime, "viewer")
    assert viewer.get(f"/admin/automations/{sid}").status_code == 200
    assert post(viewer, f"/admin/automations/{sid}/rollback", {"version": "2"},
                page=f"/admin/automations/{sid}").status_code == 403


def _hidden(html: str, name: str) -> str:
    import html as h

    return h.unescape(re.search(rf'name="{name}" value="([^"]*)"', html).group(1))


def test_the_simulator_runs_the_draft_without_sending(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/automations/new", {"example": "lead_qualification"}, page="/admin/automations")
    with runtime.db.scope() as s:
        sid = s.scalar(select(Scenario.id))
    url = f"/admin/automations/{sid}/simulate"
    html = post(admin, url, {"do": "start", "window": "open"}, page=url).get_data(as_text=True)
    assert "What is your name?" in html
    html = post(admin, url, {"do": "reply", "text": "Anna", "window": "open", "state": _hidden(html, "state"),
                             "transcript": _hidden(html, "transcript")}, page=url).get_data(as_text=True)
    assert "Nice to meet you, Anna" in html and 'name="press" value="buy"' in html
    html = post(admin, url, {"press": "buy", "window": "open", "state": _hidden(html, "state"),
                             "transcript": _hidden(html, "transcript")}, page=url).get_data(as_text=True)
    assert "What budget" in html
    html = post(admin, url, {"do": "reply", "text": "lots", "window": "open", "state": _hidden(html, "state"),
                             "transcript": _hidden(html, "transcript")}, page=url).get_data(as_text=True)
    assert "Sorry, I need a number" in html
    html = post(admin, url, {"do": "reply", "text": "5000", "window": "open", "state": _hidden(html, "state"),
                             "transcript": _hidden(html, "transcript")}, page=url).get_data(as_text=True)
    assert "Thank you, Anna!" in html and "handed_off" in html
    html = post(admin, url, {"do": "reply", "text": "x", "state": "{broken", "transcript": "[]"},
                page=url).get_data(as_text=True)
    assert "What is your name?" in html  # a broken state starts over
    with runtime.db.scope() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
        assert s.scalar(select(func.count()).select_from(Run)) == 0
