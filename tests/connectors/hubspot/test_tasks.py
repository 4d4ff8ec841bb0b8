"""sla.breached -> one HubSpot task on the deal: the mapping against real-shaped bodies
(fixtures/), the emulator's tasks endpoints, and end to end through the hub, including a
retry after HubSpot created the task but its answer was lost."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from connectors.base import HubEvent
from connectors.hubspot import emulator, mapping, tasks
from connectors.hubspot.mapping import parse_time
from hub.crm.store import build_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, CrmLink, Delivery, Event
from tests.connectors.hubspot import events as ev
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.test_chaos import drain_until_done, fast_runtime  # noqa: F401 (fixture)
from tests.connectors.hubspot.test_sync_e2e import statuses

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("task_*.json"))
TOKEN = emulator.Options.token


# -- mapping: one test per fixture ------------------------------------------------------

def run_case(fixture: dict):
    case, data = fixture["case"], fixture["input"]
    if case == "task_create_input":
        return mapping.task_create_input(data["data"], data["event_id"], parse_time(data["occurred_at"]),
                                         data["deal_crm_id"], data["contact_crm_id"], data["owner_id"])
    if case == "results_by_trace":
        return {k: v["id"] for k, v in mapping.results_by_trace(data["results"]).items()}
    if case == "tasks_by_event":
        return mapping.tasks_by_event(data["results"])
    raise AssertionError(f"unknown fixture case {case}")


@pytest.mark.parametrize("name", CASES)
def test_fixture(name):
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    assert run_case(fixture) == fixture["expected"]


def test_the_body_names_the_holder_and_escapes_customer_text():
    data = breach(3, assignee=None)
    data["contact"] = {**data["contact"], "name": "<b>Bob</b>"}
    body = mapping.task_body(data, "e-3")
    assert "&lt;b&gt;Bob&lt;/b&gt;" in body and "Nobody holds the chat." in body
    assert mapping.task_event_id({"hs_task_body": body}) == "e-3"
    assert mapping.task_event_id({"hs_task_body": "a task typed in HubSpot"}) is None


# -- the emulator's tasks endpoints ------------------------------------------------------

@pytest.fixture
def hs():
    with emulator.serve(per_10_seconds=250) as handle:
        yield handle


def call(hs, method, path, body=None):
    return requests.request(method, hs.base_url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=5)


def a(to_id, type_id):
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def deal_and_contact(hs) -> tuple[str, str]:
    cid = call(hs, "POST", "/crm/v3/objects/contacts", {"properties": {"firstname": "A"}}).json()["id"]
    did = call(hs, "POST", "/crm/v3/objects/deals", {"properties": {"dealname": "x", "dealstage": "appointmentscheduled"},
                                                     "associations": [a(cid, 3)]}).json()["id"]
    return did, cid


TASK = {"hs_timestamp": "2026-11-25T12:37:00.000Z", "hs_task_subject": "Follow up", "hs_task_body": "Call back",
        "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH", "hs_task_type": "TODO",
        "hubspot_owner_id": "41629779"}


def test_emulator_creates_reads_and_associates_tasks(hs):
    deal, contact = deal_and_contact(hs)
    one = call(hs, "POST", "/crm/v3/objects/tasks", {"properties": TASK, "associations": [a(deal, 216)]})
    assert one.status_code == 201
    task_id = one.json()["id"]
    got = call(hs, "GET", f"/crm/v3/objects/tasks/{task_id}?properties=hs_task_subject,hs_timestamp").json()
    assert got["properties"]["hs_task_subject"] == "Follow up"
    assert got["properties"]["hs_timestamp"] == TASK["hs_timestamp"]
    default = call(hs, "GET", f"/crm/v3/objects/tasks/{task_id}").json()["properties"]
    assert set(default) == {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
    batch = call(hs, "POST", "/crm/v3/objects/tasks/batch/create", {"inputs": [
        {"properties": {**TASK, "hs_task_subject": "second"}, "associations": [a(deal, 216), a(contact, 204)],
         "objectWriteTraceId": "t-2"}]})
    assert batch.status_code == 201 and batch.json()["results"][0]["objectWriteTraceId"] == "t-2"
    second = batch.json()["results"][0]["id"]
    assert hs.associated("deals", deal, "tasks") == {task_id: 215, second: 215}
    assert hs.associated("contacts", contact, "tasks") == {second: 203}
    read = call(hs, "POST", "/crm/v4/associations/deals/tasks/batch/read", {"inputs": [{"id": deal}]}).json()
    assert sorted(str(t["toObjectId"]) for t in read["results"][0]["to"]) == sorted([task_id, second])
    found = call(hs, "POST", "/crm/v3/objects/tasks/search", {
        "filterGroups": [{"filters": [{"propertyName": "hs_task_subject", "operator": "EQ", "value": "second"}]}],
        "properties": ["hs_task_subject"], "limit": 10}).json()
    assert [r["id"] for r in found["results"]] == [second]
    assert call(hs, "GET", "/crm/v3/objects/tasks/1").status_code == 404


@pytest.mark.parametrize("properties,associations,code", [
    ({k: v for k, v in TASK.items() if k != "hs_timestamp"}, [], "REQUIRED"),
    ({**TASK, "hs_task_status": "DONE"}, [], "INVALID_OPTION"),
    ({**TASK, "hs_task_priority": "URGENT"}, [], "INVALID_OPTION"),
    ({**TASK, "hs_timestamp": "tomorrow"}, [], "INVALID_DATE"),
    ({**TASK, "hubspot_owner_id": "1"}, [], "INVALID_OPTION"),
    ({**TASK, "hs_task_colour": "red"}, [], "PROPERTY_DOESNT_EXIST"),
])
def test_emulator_refuses_bad_tasks_in_hubspots_error_shape(hs, properties, associations, code):
    r = call(hs, "POST", "/crm/v3/objects/tasks/batch/create", {"inputs": [{"properties": properties}]})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR" and body["correlationId"]
    assert body["message"].startswith("Property values were not valid: ") and code in body["message"]
    assert body["errors"][0]["code"] == code and body["errors"][0]["context"]["propertyName"]
    assert hs.tasks() == []


def test_emulator_refuses_a_task_association_that_does_not_fit(hs):
    deal, _ = deal_and_contact(hs)
    for type_id in (85, 215):  # a communication's, and deal-to-task (the wrong direction)
        r = call(hs, "POST", "/crm/v3/objects/tasks", {"properties": TASK, "associations": [a(deal, type_id)]})
        assert r.status_code == 400 and f"association type {type_id}" in r.json()["message"]
    missing = call(hs, "POST", "/crm/v3/objects/tasks", {"properties": TASK, "associations": [a("999", 216)]})
    assert missing.status_code == 400
    too_many = call(hs, "POST", "/crm/v3/objects/tasks/batch/create", {"inputs": [{"properties": TASK}] * 101})
    assert too_many.status_code == 400
    assert hs.tasks() == []


def test_tasks_count_against_the_same_rate_limit():
    with emulator.serve(per_10_seconds=3) as hs:
        answers = [call(hs, "POST", "/crm/v3/objects/tasks", {"properties": TASK}) for _ in range(3)]
        answers.append(call(hs, "GET", "/crm/v3/objects/tasks/" + answers[0].json()["id"]))
        assert [r.status_code for r in answers] == [201, 201, 201, 429]
        assert answers[-1].json()["policyName"] == "TEN_SECONDLY_ROLLING"


# -- the connector ----------------------------------------------------------------------

def breach(n: int, *, assignee=ev.OLGA, reassigned_to=None, target: str = "first_response") -> dict:
    return {"conversation": ev.conversation(n, assignee=assignee), "contact": ev.contact(n),
            "team": {"id": 1, "name": "Sales"}, "target": target, "clock_started_at": ev.iso(ev.T0),
            "elapsed_seconds": 420, "target_seconds": 300, "assignee": assignee,
            "supervisor": None, "reassigned_to": reassigned_to}


def instance(runtime, connector_id, http_timeout: float = 5):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=http_timeout)


def links(runtime, entity_type: str) -> dict[str, str]:
    with runtime.db.scope() as session:
        return dict(session.execute(select(CrmLink.entity_id, CrmLink.crm_id)
                                    .where(CrmLink.entity_type == entity_type)).all())


def test_each_breach_becomes_one_task_on_its_deal(runtime, emu):
    make_connector(runtime, emu)
    ana = {"id": 5, "email": "ana@example.com", "name": "Ana"}
    with runtime.db.scope() as session:
        for n in (1, 2, 3):
            ev.emit_event(session, "conversation.started", {"conversation": ev.conversation(n), "contact": ev.contact(n)}, n)
        ev.emit_event(session, "sla.breached", breach(1), 1)
        ev.emit_event(session, "sla.breached", breach(2, reassigned_to=ana, target="next_response"), 2)
        ev.emit_event(session, "sla.breached", breach(3, assignee=ev.NOBODY), 3)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": 6}
    deal_of = {int(d["properties"]["hub_conversation_id"]): d["id"] for d in emu.records("deals")}
    contact_of = {c["properties"]["hub_whatsapp_id"]: c["id"] for c in emu.records("contacts")}
    made = {t["deals"][0]: t for t in emu.tasks()}
    assert len(emu.tasks()) == 3 and set(made) == set(deal_of.values())
    for n, deal in deal_of.items():
        task = made[deal]
        assert task["contacts"] == [contact_of[ev.contact(n)["wa_id"]]]
        assert emu.associated("tasks", task["id"], "deals") == {deal: mapping.TASK_TO_DEAL}
        props = task["properties"]
        assert (props["hs_task_status"], props["hs_task_priority"], props["hs_task_type"]) == ("NOT_STARTED", "HIGH", "TODO")
    first, second, third = (made[deal_of[n]]["properties"] for n in (1, 2, 3))
    assert first["hubspot_owner_id"] == "41629779"   # Olga, by the same e-mail in /crm/v3/owners
    assert second["hubspot_owner_id"] == "41629781"  # handed to Ana on breach: the task is hers
    assert "hubspot_owner_id" not in third           # an operator HubSpot does not know: no owner
    assert "first response target of Sales (5 min) was missed: 7 min" in first["hs_task_body"]
    assert "Handed to Ana (was Olga)." in second["hs_task_body"] and "next response" in second["hs_task_subject"]
    with runtime.db.scope() as session:
        occurred = {e.data["conversation"]["id"]: e.occurred_at
                    for e in session.scalars(select(Event).where(Event.type == "sla.breached"))}
    due = parse_time(first["hs_timestamp"])
    assert abs(due - (occurred[1] + timedelta(minutes=30))) < timedelta(milliseconds=1)
    assert emu.stats()["by_endpoint"]["POST /crm/v3/objects/tasks/batch/create"] == 1  # one request for the wave
    assert set(links(runtime, tasks.TASK_LINK).values()) == {t["id"] for t in emu.tasks()}


def test_a_breach_before_the_deal_exists_creates_the_deal_then_the_task(runtime, emu):
    make_connector(runtime, emu)
    with runtime.db.scope() as session:
        ev.emit_event(session, "sla.breached", breach(9), 9)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": 1}
    (deal,) = emu.records("deals")
    (task,) = emu.tasks()
    assert task["deals"] == [deal["id"]] and deal["properties"]["hub_conversation_id"] == "9"


def test_a_retry_after_a_lost_answer_finds_the_task_instead_of_writing_another(runtime, emu):
    connector_id = make_connector(runtime, emu)
    with runtime.db.scope() as session:
        ev.emit_event(session, "conversation.started", {"conversation": ev.conversation(7), "contact": ev.contact(7)}, 7)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    connector = instance(runtime, connector_id, http_timeout=0.5)
    event = HubEvent("evt-breach-7", "sla.breached", 1, utcnow(), breach(7), "conversation:7")
    # HubSpot writes the task, its answer comes after the connector gave up waiting.
    emu.set_chaos(timeout_rate=1.0, timeout_seconds=1.0, chaos_paths=("/crm/v3/objects/tasks/batch/create",))
    (lost,) = connector.deliver([event])
    assert lost.status == "retry" and "did not answer" in lost.error
    assert len(emu.tasks()) == 1
    (again,) = connector.deliver([event])  # the create would still time out: it is not sent
    assert again.status == "done", again
    task_id = emu.tasks()[0]["id"]
    assert again.response["hubspot"]["task"] == task_id and again.response["hubspot"]["recovered"] is True
    emu.set_chaos(timeout_rate=0.0)
    (third,) = connector.deliver([event])  # the link now answers without asking HubSpot
    assert third.status == "done" and third.response["hubspot"]["task"] == task_id
    assert len(emu.tasks()) == 1
    assert emu.stats()["by_endpoint"]["POST /crm/v3/objects/tasks/batch/create"] == 1
    assert links(runtime, tasks.TASK_LINK) == {"evt-breach-7": task_id}


def test_through_the_worker_a_lost_answer_still_ends_in_one_task(fast_runtime):  # noqa: F811
    runtime = fast_runtime
    with emulator.serve(per_10_seconds=250, timeout_rate=1.0, timeout_seconds=0.8,
                        chaos_paths=("/crm/v3/objects/tasks/batch/create",)) as hs:
        from connectors.hubspot import benchkit
        benchkit.prepare(hs)
        make_connector(runtime, hs)
        with runtime.db.scope() as session:
            ev.emit_event(session, "conversation.started", {"conversation": ev.conversation(4), "contact": ev.contact(4)}, 4)
            ev.emit_event(session, "sla.breached", breach(4), 4)
        drain_until_done(runtime, Worker(runtime.db, runtime.vault, runtime.config), 2)
        assert statuses(runtime) == {"done": 2}
        (task,) = hs.tasks()
        assert task["deals"] == [hs.records("deals")[0]["id"]]
        with runtime.db.scope() as session:
            delivery = session.scalars(select(Delivery).join(Event, Event.id == Delivery.event_id)
                                       .where(Event.type == "sla.breached")).one()
            assert delivery.attempts >= 2 and delivery.last_response["hubspot"]["recovered"] is True


def test_preview_shows_the_task_and_sends_nothing(runtime, emu):
    connector = instance(runtime, make_connector(runtime, emu))
    event = HubEvent("evt-breach-8", "sla.breached", 1, utcnow(), breach(8), "conversation:8")
    before = emu.stats()["requests"]
    plan = connector.preview([event])
    assert emu.stats()["requests"] == before
    assert plan[-1]["path"] == "/crm/v3/objects/tasks/batch/create"
    (task,) = plan[-1]["body"]["inputs"]
    assert task["associations"][0]["to"]["id"] == "<new deal for conversation 8>"
    assert task["associations"][0]["types"][0]["associationTypeId"] == mapping.TASK_TO_DEAL
    assert task["properties"]["hubspot_owner_id"] == "<owner with e-mail olga@example.com>"
