"""The runtime: runs kept in the database, driven by the hub's events, waits woken by
workers, one live run per conversation, the operator pausing the bot, the daily limit."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.automations import runtime as automation_runtime
from hub.automations.runtime import Runner, pause_for_operator, start_manually
from hub.conversations import tags_and_fields
from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.models import (Conversation, Event, Message, QueueEntry, Run, Scenario, StepLog,
                        Team, Template)
from tests.automations.support import Hub
from tests.support.whatsapp import WABA_ID

LEAD = {
    "name": "Lead", "trigger": {"type": "keyword", "match": "contains", "keywords": ["price"], "synonyms": ["цена"]},
    "steps": [
        {"id": "name", "type": "ask", "text": "Your name?", "save_as": "name", "store": "contact.name", "next": "budget"},
        {"id": "budget", "type": "ask", "text": "Budget, {{answers.name}}?", "validate": "number", "save_as": "budget",
         "store": "deal.budget", "retry_text": "A number, please.", "next": "tag"},
        {"id": "tag", "type": "set", "add_tags": ["lead"], "fields": {"contact.city": "Berlin"}, "next": "human"},
        {"id": "human", "type": "handoff", "team_id": 1},
    ],
}


@pytest.fixture
def hub(runtime, client):
    with runtime.db.scope() as session:
        session.add(Team(id=1, name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[],
                         channel_ids=[], sla={}))
    return Hub(runtime, client)


def bot_texts(runtime):
    with runtime.db.scope() as session:
        return [m.text for m in session.scalars(select(Message).where(Message.direction == "out").order_by(Message.id))]


def the_run(runtime):
    with runtime.db.scope() as session:
        run = session.scalar(select(Run).order_by(Run.id.desc()))
        session.expunge(run)
        return run


def test_a_keyword_starts_the_scenario_which_asks_re_asks_stores_and_hands_off(hub, runtime):
    hub.publish(LEAD)
    hub.say("491510000001", "hello")  # no keyword: nothing
    hub.work()
    assert bot_texts(runtime) == []
    hub.say("491510000001", "What is the PRICE?")
    hub.work()
    assert bot_texts(runtime) == ["Your name?"]
    hub.say("491510000001", "Anna")
    hub.work()
    hub.say("491510000001", "a lot")
    hub.work()
    hub.say("491510000001", "5 000")
    hub.work()
    assert bot_texts(runtime) == ["Your name?", "Budget, Anna?", "A number, please.\nBudget, Anna?"]
    run = the_run(runtime)
    assert run.status == "handed_off" and run.state["answers"] == {"name": "Anna", "budget": 5000}
    with runtime.db.scope() as session:
        assert tags_and_fields.tags_of(session, run.contact_id) == ["lead"]
        assert tags_and_fields.fields_of(session, run.contact_id) == {"city": "Berlin", "name": "Anna"}
        entry = session.get(QueueEntry, run.conversation_id)
        assert entry is not None and entry.team_id == 1 and entry.reason == "no_operator"
        step_event = session.scalar(select(Event).where(Event.type == "automation.step"))
        assert step_event.data["action"] == "deal_fields" and step_event.data["fields"] == {"budget": 5000}
        kinds = [log.kind for log in session.scalars(select(StepLog).where(StepLog.run_id == run.id)
                                                     .order_by(StepLog.id))]
        assert kinds[0] == "started" and "invalid" in kinds and kinds.count("stored") == 3 and kinds[-1] == "handoff"
        # Bot messages have no author (no SLA target, no response time) and say which run sent them.
        out = list(session.scalars(select(Message).where(Message.direction == "out")))
        assert all(m.author_id is None and m.payload["automation"]["run_id"] == run.id for m in out)


def test_one_live_run_per_conversation_and_a_draft_never_runs(hub, runtime):
    hub.publish({**LEAD, "name": "other", "trigger": {"type": "keyword", "keywords": ["unrelated"]}})
    with runtime.db.scope() as session:
        from hub.automations import store

        store.create(session, {**LEAD, "name": "draft only"}, now=hub.clock())
    hub.say("491510000002", "price")
    hub.work()
    assert bot_texts(runtime) == []  # only a draft
    hub.publish(LEAD)
    hub.say("491510000002", "price")
    hub.work()
    hub.say("491510000002", "price again")  # an answer to the question, not a second run
    hub.work()
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 1
    assert the_run(runtime).state["answers"] == {"name": "price again"}


def test_an_operator_message_pauses_the_bot(hub, runtime):
    hub.publish(LEAD)
    hub.say("491510000003", "price")
    hub.work()
    run = the_run(runtime)
    with runtime.db.scope() as session:
        pause_for_operator(session, run.conversation_id, now=hub.clock())
    hub.say("491510000003", "Anna")
    hub.work()
    assert the_run(runtime).status == "paused" and bot_texts(runtime) == ["Your name?"]


WAITING = {"name": "Wait", "trigger": {"type": "keyword", "keywords": ["hi"]}, "steps": [
    {"id": "w", "type": "wait", "seconds": 3600, "on_reply": "ignore", "next": "t"},
    {"id": "t", "type": "text", "text": "An hour later"}]}


def test_a_wait_fires_once_from_any_runner_after_a_restart(hub, runtime):
    hub.publish(WAITING)
    hub.say("491510000004", "hi")
    hub.work()
    assert the_run(runtime).status == "waiting"
    hub.runner = Runner(runtime, clock=hub.clock)  # a new worker: nothing is kept in memory
    hub.work(1800)
    assert bot_texts(runtime) == []
    hub.work(1801)
    hub.work(10)
    assert bot_texts(runtime) == ["An hour later"] and the_run(runtime).status == "completed"


def test_the_daily_limit_stops_a_chatty_run(hub, runtime, monkeypatch):
    monkeypatch.setattr(automation_runtime, "DAILY_STEP_LIMIT", 4)
    hub.publish(LEAD)
    hub.say("491510000005", "price")
    hub.work()
    for word in ("Anna", "x", "y", "z"):
        hub.say("491510000005", word)
        hub.work()
    run = the_run(runtime)
    assert run.status == "stopped" and "steps in this conversation today" in run.reason


STAGE = {"name": "Order status", "trigger": {"type": "deal_stage", "stage": "Shipped", "delay_minutes": 30},
         "steps": [{"id": "t", "type": "text", "text": "Your order is {{trigger.stage}}",
                    "template": {"name": "order_shipped", "language": "en"}}]}


def test_a_crm_stage_starts_the_scenario_after_its_delay(hub, runtime):
    hub.say("491510000006", "hello")
    hub.publish(STAGE)
    with runtime.db.scope() as session:
        conversation = session.scalar(select(Conversation))
        emit(session, "deal.stage_changed", {"conversation": {"id": conversation.id},
                                             "deal": {"id": "77", "stage": "143", "stage_name": "Shipped"}},
             now=hub.clock() - timedelta(seconds=3))
    hub.work()
    assert the_run(runtime).status == "waiting" and bot_texts(runtime) == []
    hub.work(30 * 60)
    assert bot_texts(runtime) == ["Your order is Shipped"]


def test_no_reply_for_hours_starts_a_reminder_once(hub, runtime):
    hub.publish({"name": "Reminder", "trigger": {"type": "no_reply", "hours": 23},
                 "steps": [{"id": "t", "type": "text", "text": "Still interested?"}]})
    hub.say("491510000007", "hello")
    with runtime.db.scope() as session:
        conversation = session.scalar(select(Conversation))
        conversation.last_message_at = conversation.last_inbound_at + timedelta(minutes=1)  # we answered
    hub.work(22 * 3600)
    assert bot_texts(runtime) == []
    hub.work(3600 + 120)
    hub.work(3600)
    assert bot_texts(runtime) == ["Still interested?"]


def test_a_closed_conversation_gets_the_feedback_poll_as_a_template_and_its_answer(hub, runtime):
    with runtime.db.scope() as session:
        session.add(Template(waba_id=WABA_ID, name="feedback_poll", language="en", status="APPROVED",
                             category="UTILITY", parameter_format="POSITIONAL", components=[
                                 {"type": "BODY", "text": "How did we do, {{1}}?"},
                                 {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Good"},
                                                                 {"type": "QUICK_REPLY", "text": "Bad"}]}]))
    hub.publish({"name": "Feedback", "trigger": {"type": "conversation_closed"}, "steps": [
        {"id": "q", "type": "ask", "text": "How did we do?", "validate": "choice", "save_as": "score",
         "choices": [{"id": "good", "title": "Good"}, {"id": "bad", "title": "Bad"}], "next": "t",
         "template": {"name": "feedback_poll", "language": "en", "variables": ["{{contact.name}}"]}},
        {"id": "t", "type": "text", "text": "Thanks: {{answers.score}}"}]})
    hub.say("491510000008", "thanks, bye")
    with runtime.db.scope() as session:
        from hub.conversations.actions import close

        close(session, session.scalar(select(Conversation)), reason="operator", now=utcnow())
    hub.work()
    assert bot_texts(runtime) == ["How did we do, Customer 008?\n[Good] | [Bad]"]
    hub.say("491510000008", reply=("template:good", "Good"))
    hub.work()
    assert bot_texts(runtime)[-1] == "Thanks: good"
    assert the_run(runtime).status == "completed"


def test_http_step_calls_out_signed_and_later_steps_read_its_json(runtime, client, monkeypatch):
    calls = []

    class Answer:
        status_code, content = 200, b"{}"

        def json(self):
            return {"order": {"status": "shipped"}}

    def fake(method, url, **kwargs):
        calls.append((method, url, kwargs))
        return Answer()

    monkeypatch.setenv("ORDER_HOOK_SECRET", "s3cret")
    hub = Hub(runtime, client, http=fake)
    hub.publish({"name": "Lookup", "trigger": {"type": "keyword", "keywords": ["order"]}, "steps": [
        {"id": "h", "type": "http", "url": "https://shop.test/lookup", "body": {"phone": "{{contact.phone}}"},
         "secret_env": "ORDER_HOOK_SECRET", "timeout_seconds": 2, "save_as": "shop", "next": "t"},
        {"id": "t", "type": "text", "text": "Status: {{http.shop.order.status}}"}]})
    hub.say("491510000009", "my order?")
    hub.work()
    assert bot_texts(runtime) == ["Status: shipped"]
    method, url, kwargs = calls[0]
    assert (method, url, kwargs["timeout"]) == ("POST", "https://shop.test/lookup", 2)
    assert kwargs["data"] == b'{"phone": "+491510000009"}'
    assert kwargs["headers"]["X-Hub-Signature-256"].startswith("sha256=")


def test_manual_start_runs_on_the_next_worker_round(hub, runtime):
    scenario_id = hub.publish({"name": "Hello", "trigger": {"type": "manual"},
                               "steps": [{"id": "t", "type": "text", "text": "Hello from us"}]})
    hub.say("491510000010", "hi")
    with runtime.db.scope() as session:
        start_manually(session, session.get(Scenario, scenario_id), session.scalar(select(Conversation)),
                       now=hub.clock(), by="api")
    hub.work()
    assert bot_texts(runtime) == ["Hello from us"]
