"""The pure engine: a test per step type, the clock passed in."""
from datetime import datetime, timedelta, timezone

from hub.automations import engine
from hub.automations.definition import load
from hub.automations.engine import (Close, DealStage, Facts, Handoff, Http, HttpResult, Reply, Send, Start, Store,
                                    Tags, Timeout, advance)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
FACTS = Facts(contact={"name": "Anna", "phone": "+4915112345678"}, tags=("new",))


def scenario(*steps):
    return load({"name": "t", "trigger": {"type": "manual"}, "steps": list(steps)})


def run(definition, state=None, event=None, now=NOW, facts=FACTS):
    return advance(definition, state, event or Start({"type": "manual"}), now=now, facts=facts)


def test_text_with_variables_then_completes():
    out = run(scenario({"id": "hi", "type": "text", "text": "Hello, {{contact.name}}!"}))
    assert out.actions == [Send("text", {"body": "Hello, Anna!"})]
    assert out.status == "completed" and out.logs[0]["kind"] == "sent"


def test_text_goes_as_the_template_when_the_window_is_closed_or_is_skipped():
    d = scenario({"id": "a", "type": "text", "text": "Your order", "next": "b",
                  "template": {"name": "order_update", "language": "en", "variables": ["{{contact.name}}"]}},
                 {"id": "b", "type": "text", "text": "no template"})
    out = run(d, facts=Facts(contact={"name": "Anna"}, window_open=False))
    assert out.actions == [Send("template", template={"name": "order_update", "language": "en", "body": ["Anna"]})]
    assert out.logs[1]["kind"] == "skipped" and out.status == "completed"


def test_media_buttons_list_and_template():
    rows = [{"id": f"r{i}", "title": f"Row {i}"} for i in range(10)]
    d = scenario({"id": "m", "type": "media", "media_type": "image", "link": "https://x.test/a.png", "caption": "c",
                  "next": "b"},
                 {"id": "b", "type": "buttons", "text": "Pick", "buttons": [{"id": "y", "title": "Yes"}], "next": "l"},
                 {"id": "l", "type": "list", "text": "Pick a row", "rows": rows, "next": "t"},
                 {"id": "t", "type": "template", "template": {"name": "hello", "language": "ru"}})
    out = run(d)
    kinds = [a.kind for a in out.actions]
    assert kinds == ["image", "interactive", "interactive", "template"]
    assert out.actions[1].content["action"]["buttons"] == [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]
    assert len(out.actions[2].content["action"]["sections"][0]["rows"]) == 10


ASK = {"id": "budget", "type": "ask", "text": "Your budget?", "validate": "number", "min": 0, "save_as": "budget",
       "store": "deal.budget", "retries": 1, "retry_text": "A number, please.", "on_fail": "human", "next": "thanks"}
THANKS = {"id": "thanks", "type": "text", "text": "Thanks: {{answers.budget}}"}
HUMAN = {"id": "human", "type": "handoff", "team_id": 3}


def test_ask_validates_re_asks_then_stores():
    d = scenario(ASK, THANKS, HUMAN)
    asked = run(d)
    assert asked.status == "waiting" and asked.state["waiting"] == "reply"
    bad = advance(d, asked.state, Reply("lots"), now=NOW, facts=FACTS)
    assert bad.status == "waiting" and bad.actions == [Send("text", {"body": "A number, please.\nYour budget?"})]
    assert bad.logs[0] == {"step": "budget", "kind": "invalid", "detail": {"answer": "lots", "reason": "not a number"}}
    good = advance(d, bad.state, Reply("50 000"), now=NOW, facts=FACTS)
    assert good.actions == [Store("deal.budget", 50000), Send("text", {"body": "Thanks: 50000"})]
    assert good.status == "completed" and good.state["deal"] == {"budget": 50000}


def test_ask_gives_up_after_its_retries_and_goes_on_fail():
    d = scenario(ASK, THANKS, HUMAN)
    state = run(d).state
    state = advance(d, state, Reply("x"), now=NOW, facts=FACTS).state
    out = advance(d, state, Reply("y"), now=NOW, facts=FACTS)
    assert out.status == "handed_off" and out.actions == [Handoff(team_id=3, user_id=None, note="")]


def test_ask_each_validation():
    cases = {"phone": ("call me", "+7 916 123 45 67", "+79161234567"), "email": ("no", "A@B.io", "a@b.io"),
             "date": ("soon", "31.12.2026", "2026-12-31")}
    for kind, (bad, good, stored) in cases.items():
        d = scenario({"id": "q", "type": "ask", "text": "?", "validate": kind, "save_as": "v"})
        state = run(d).state
        assert advance(d, state, Reply(bad), now=NOW, facts=FACTS).logs[0]["kind"] == "invalid"
        assert advance(d, state, Reply(good), now=NOW, facts=FACTS).state["answers"] == {"v": stored}


def test_ask_a_choice_as_buttons_by_press_or_typed_synonym():
    d = scenario({"id": "q", "type": "ask", "text": "Need?", "validate": "choice", "save_as": "need",
                  "choices": [{"id": "buy", "title": "Buy", "synonyms": ["купить"]}, {"id": "rent", "title": "Rent"}]})
    asked = run(d)
    assert asked.actions[0].kind == "interactive" and asked.actions[0].content["type"] == "button"
    assert advance(d, asked.state, Reply("Rent", "rent"), now=NOW, facts=FACTS).state["answers"] == {"need": "rent"}
    assert advance(d, asked.state, Reply("КУПИТЬ"), now=NOW, facts=FACTS).state["answers"] == {"need": "buy"}


def test_ask_reminds_once_then_gives_up():
    d = scenario({"id": "q", "type": "ask", "text": "Name?", "remind_after_seconds": 3600, "remind_text": "Still there?",
                  "give_up_after_seconds": 7200, "save_as": "name"})
    asked = run(d)
    assert asked.wake_at == NOW + timedelta(hours=1)
    reminded = advance(d, asked.state, Timeout(), now=NOW + timedelta(hours=1), facts=FACTS)
    assert reminded.actions == [Send("text", {"body": "Still there?"})] and reminded.status == "waiting"
    assert reminded.wake_at == NOW + timedelta(hours=3)
    dropped = advance(d, reminded.state, Timeout(), now=NOW + timedelta(hours=3), facts=FACTS)
    assert dropped.actions == [] and dropped.status == "stopped" and dropped.reason == "no answer at q"


def test_branch_on_answers_fields_tags_and_time():
    d = scenario({"id": "b", "type": "branch", "cases": [
        {"when": [{"value_of": "contact.name", "op": "eq", "value": "anna"}, {"tag": "vip"}], "next": "vip"},
        {"when": [{"hours": {"mon": [["09:00", "12:00"]]}, "time_zone": "UTC"}], "next": "morning"}],
        "else": "other"},
        {"id": "vip", "type": "close"}, {"id": "morning", "type": "text", "text": "good morning"},
        {"id": "other", "type": "text", "text": "hello"})
    assert run(d, facts=Facts(contact={"name": "Anna"}, tags=("vip",))).actions == [Close()]
    morning = run(d)
    assert morning.actions == [Send("text", {"body": "good morning"})]
    assert morning.logs[0]["detail"]["next"] == "morning"
    assert run(d, now=NOW + timedelta(hours=5)).actions == [Send("text", {"body": "hello"})]


def test_branch_numbers():
    holds = engine.holds
    scope = {"answers": {"budget": 1500}, "tags": []}
    assert holds({"value_of": "answers.budget", "op": "gte", "value": 1000}, scope, NOW)
    assert not holds({"value_of": "answers.budget", "op": "lt", "value": "1000"}, scope, NOW)
    assert holds({"value_of": "answers.none", "op": "missing"}, scope, NOW)


def test_wait_then_resume_on_reply_or_stop():
    d = scenario({"id": "w", "type": "wait", "seconds": 600, "on_reply": "resume", "reply_next": "r", "next": "t"},
                 {"id": "t", "type": "text", "text": "timed out"}, {"id": "r", "type": "text", "text": "you wrote"})
    waiting = run(d)
    assert waiting.status == "waiting" and waiting.wake_at == NOW + timedelta(minutes=10)
    assert advance(d, waiting.state, Timeout(), now=NOW, facts=FACTS).actions == [Send("text", {"body": "timed out"})]
    assert advance(d, waiting.state, Reply("hi"), now=NOW, facts=FACTS).actions == [Send("text", {"body": "you wrote"})]
    stop = scenario({"id": "w", "type": "wait", "seconds": 600, "on_reply": "stop", "next": "t"},
                    {"id": "t", "type": "text", "text": "x"})
    assert advance(stop, run(stop).state, Reply("hi"), now=NOW, facts=FACTS).status == "stopped"


def test_set_tags_and_fields():
    d = scenario({"id": "s", "type": "set", "add_tags": ["lead", "new"], "remove_tags": ["new"],
                  "fields": {"contact.city": "Berlin", "conversation.topic": "{{contact.name}}'s order"}})
    out = run(d)
    assert out.actions == [Tags(("lead",), ("new",)), Store("contact.city", "Berlin"),
                           Store("conversation.topic", "Anna's order")]
    assert out.state["tags"] == ["lead"]


def test_deal_stage_and_handoff():
    d = scenario({"id": "d", "type": "deal_stage", "stage": "Qualified", "next": "h"},
                 {"id": "h", "type": "handoff", "user_id": 7, "note": "for {{contact.name}}"})
    out = run(d)
    assert out.actions == [DealStage("Qualified"), Handoff(user_id=7, note="for Anna")]
    assert out.status == "handed_off"


def test_http_call_and_its_json_in_later_steps():
    d = scenario({"id": "h", "type": "http", "url": "https://shop.test/orders", "body": {"phone": "{{contact.phone}}"},
                  "save_as": "order", "on_error": "sorry", "next": "t"},
                 {"id": "t", "type": "text", "text": "Order {{http.order.number}} is {{http.order.status}}"},
                 {"id": "sorry", "type": "text", "text": "cannot look it up"})
    calling = run(d)
    assert calling.actions == [Http("https://shop.test/orders", "POST", {"phone": "+4915112345678"}, 5.0)]
    assert calling.state["waiting"] == "http"
    ok = advance(d, calling.state, HttpResult(True, {"number": 42, "status": "shipped"}), now=NOW, facts=FACTS)
    assert ok.actions == [Send("text", {"body": "Order 42 is shipped"})]
    failed = advance(d, calling.state, HttpResult(False, error="timeout"), now=NOW, facts=FACTS)
    assert failed.actions == [Send("text", {"body": "cannot look it up"})]


def test_close():
    out = run(scenario({"id": "c", "type": "close", "text": "Bye"}))
    assert out.actions == [Send("text", {"body": "Bye"}), Close()] and out.status == "closed"


def test_a_loop_the_checks_cannot_see_is_cut_off():
    # A branch whose cases all go back: allowed by shape, stopped at MAX_STEPS.
    d = load({"name": "t", "trigger": {"type": "manual"}, "steps": [
        {"id": "a", "type": "set", "add_tags": ["x"], "next": "b"}, {"id": "b", "type": "set", "next": "a"}]})
    out = run(d)
    assert out.status == "failed" and out.reason.startswith("loop detected")


def test_delayed_start_begins_on_its_timeout():
    d = scenario({"id": "a", "type": "text", "text": "Stage {{trigger.stage}}"})
    state = engine.delayed_start({"type": "deal_stage", "stage": "Shipped"}, NOW + timedelta(minutes=30))
    out = advance(d, state, Timeout(), now=NOW + timedelta(minutes=30), facts=FACTS)
    assert out.actions == [Send("text", {"body": "Stage Shipped"})]
