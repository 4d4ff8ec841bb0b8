"""/api/v1/automations: drafts, publish with named refusals, versions and rollback,
export and import, manual start, runs with their steps, statistics."""
from sqlalchemy import func, select

from hub.models import Conversation, Run, Scenario
from tests.automations.support import message_body
from tests.support.whatsapp import make_channel, post_signed

BASE = "/api/v1/automations"
DOC = {"name": "Hello", "trigger": {"type": "manual"},
       "steps": [{"id": "hi", "type": "text", "text": "Hello {{contact.name}}"}]}


def test_publish_refuses_with_the_paths_of_the_bad_parts_and_writes_nothing(client, admin_headers, runtime):
    bad = {"name": "Bad", "trigger": {"type": "manual"}, "steps": [
        {"id": "a", "type": "teleport"},
        {"id": "b", "type": "branch", "cases": [{"when": [{"tag": "x"}], "next": "nowhere"}]},
        {"id": "c", "type": "text", "text": "{{answers.none}}", "next": "d"},
        {"id": "d", "type": "set", "next": "c"}]}
    r = client.post(f"{BASE}/scenarios", json={"document": bad, "publish": True}, headers=admin_headers)
    assert r.status_code == 422
    problems = r.json["errors"]["json"]["document"]
    assert problems[0].startswith("steps[0] (a).type: unknown step type 'teleport'")
    r = client.post(f"{BASE}/scenarios", json={"document": {**bad, "steps": bad["steps"][1:]}, "publish": True},
                    headers=admin_headers)
    problems = r.json["errors"]["json"]["document"]
    assert "steps[0] (b).cases[0].next: no step 'nowhere'" in problems
    assert "steps[1] (c).text: {{answers.none}}: no ask step saves an answer as 'none'" in problems
    assert "steps[1] (c): endless loop c -> d -> c (a cycle needs an ask or a wait step)" in problems
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Scenario)) == 0


def test_drafts_versions_rollback_export_import(client, admin_headers, viewer_headers):
    r = client.post(f"{BASE}/scenarios", json={"document": DOC}, headers=admin_headers)
    assert r.status_code == 201 and r.json["published_version"] is None
    sid = r.json["id"]
    assert client.post(f"{BASE}/scenarios/{sid}/publish", headers=admin_headers).json["published_version"] == 1
    changed = {**DOC, "steps": [{"id": "hi", "type": "text", "text": "Hi again"}]}
    assert client.put(f"{BASE}/scenarios/{sid}", json={"document": changed}, headers=admin_headers).status_code == 200
    assert client.post(f"{BASE}/scenarios/{sid}/publish", headers=admin_headers).json["published_version"] == 2
    versions = client.get(f"{BASE}/scenarios/{sid}/versions", headers=viewer_headers).json
    assert [(v["number"], v["live"]) for v in versions] == [(1, False), (2, True)]
    r = client.post(f"{BASE}/scenarios/{sid}/rollback", json={}, headers=admin_headers)
    assert r.json["published_version"] == 1
    r = client.post(f"{BASE}/scenarios/{sid}/rollback", json={"version": 9}, headers=admin_headers)
    assert r.status_code == 422 and "version" in r.json["errors"]["json"]
    exported = client.get(f"{BASE}/scenarios/{sid}/export", headers=viewer_headers)
    assert "attachment" in exported.headers["Content-Disposition"]
    assert exported.json["format"] == "hub.automation/1" and exported.json["scenario"] == changed
    r = client.post(f"{BASE}/scenarios/import", json={"file": exported.json, "publish": True}, headers=admin_headers)
    assert r.status_code == 201 and r.json["published_version"] == 1 and r.json["document"] == changed
    assert client.post(f"{BASE}/scenarios/{sid}/publish", headers=viewer_headers).status_code == 403
    assert client.post(f"{BASE}/scenarios/{sid}/unpublish", headers=admin_headers).json["published_version"] is None


def test_manual_start_runs_and_stats(client, admin_headers, runtime):
    channel_id, key = make_channel(runtime)
    assert post_signed(client, key, message_body("4915100000011", "hi")).status_code == 200
    with runtime.db.scope() as session:
        conversation_id = session.scalar(select(Conversation.id))
    sid = client.post(f"{BASE}/scenarios", json={"document": DOC}, headers=admin_headers).json["id"]
    r = client.post(f"{BASE}/scenarios/{sid}/start", json={"conversation_id": conversation_id}, headers=admin_headers)
    assert r.status_code == 409 and "not published" in r.json["message"]  # a draft never runs
    client.post(f"{BASE}/scenarios/{sid}/publish", headers=admin_headers)
    r = client.post(f"{BASE}/scenarios/{sid}/start", json={"conversation_id": conversation_id}, headers=admin_headers)
    assert r.status_code == 201 and r.json["status"] == "waiting" and r.json["steps"][0]["kind"] == "started"
    again = client.post(f"{BASE}/scenarios/{sid}/start", json={"conversation_id": conversation_id},
                        headers=admin_headers)
    assert again.status_code == 409 and "already running" in again.json["message"]
    from hub.automations.runtime import Runner

    Runner(runtime).wake_due()
    run = client.get(f"{BASE}/runs/{r.json['id']}", headers=admin_headers).json
    assert run["status"] == "completed" and [s["kind"] for s in run["steps"]] == ["started", "sent", "queued"]
    listed = client.get(f"{BASE}/runs", query_string={"conversation_id": conversation_id}, headers=admin_headers)
    assert [x["id"] for x in listed.json] == [r.json["id"]]
    stats = client.get(f"{BASE}/scenarios/{sid}/stats", headers=admin_headers).json
    assert stats["started"] == 1 and stats["completed"] == 1 and stats["dropped"] == 0
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 1
