"""Open Lines mode through the hub and the emulated portal: settings, set-up hops, inbound."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from marshmallow import ValidationError
from sqlalchemy import func, select

from connectors.bitrix24 import openlines
from connectors.bitrix24.client import Bitrix24Client
from connectors.bitrix24.errors import MethodError
from connectors.bitrix24.settings import Bitrix24Settings
from hub.crm.check import run_check
from hub.crm.store import build_connector, create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Delivery
from tests.connectors.bitrix24 import factory
from tests.connectors.bitrix24.conftest import oauth_settings, webhook_settings

CHAT = {"mode": "openlines", "openlines_connector_id": "whatsapp_hub", "openlines_line_id": "1"}


def make(runtime, settings, name="b24") -> int:
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind="bitrix24", name=name, settings=settings,
                                now=utcnow()).id


def built(runtime, cid, **kw):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=kw.get("timeout", 5),
                           base_url="http://hub.test")


def statuses(runtime):
    with runtime.db.scope() as session:
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def test_open_lines_need_the_oauth_app_connection(portal):
    with pytest.raises(ValidationError) as err:
        Bitrix24Settings().load(webhook_settings(portal, **CHAT))
    assert "OAuth app connection" in err.value.messages["mode"][0]
    assert "incoming webhook" in err.value.messages["mode"][0]
    with pytest.raises(ValidationError) as err:
        Bitrix24Settings().load(oauth_settings(portal, **{**CHAT, "openlines_line_id": ""}))
    assert "openlines_line_id" in err.value.messages
    with pytest.raises(ValidationError) as err:
        Bitrix24Settings().load(oauth_settings(portal, **{**CHAT, "openlines_connector_id": "whats.app"}))
    assert "openlines_connector_id" in err.value.messages
    assert Bitrix24Settings().load(webhook_settings(portal))["mode"] == "timeline"


def test_test_connection_registers_activates_and_binds(runtime, portal):
    cid = make(runtime, oauth_settings(portal, **CHAT))
    result = run_check(runtime, cid, now=utcnow())
    assert result.ok, result.message
    assert result.details["openlines"] == {"registered": "connector whatsapp_hub registered",
                                           "line_active": "active on open line 1",
                                           "event_bound": "OnImConnectorMessageAdd bound to the hub"}
    p = portal.portal
    with runtime.db.scope() as session:
        key = session.get(ConnectorRecord, cid).webhook_key
    hook = f"http://hub.test/webhooks/connectors/{key}"
    assert p.ol.connectors["whatsapp_hub"]["PLACEMENT_HANDLER"] == f"{hook}/placement"
    assert p.ol.connectors["whatsapp_hub"]["ICON"]["DATA_IMAGE"].startswith("data:image/svg+xml,%3Csvg")
    assert ("whatsapp_hub", 1) in p.ol.active
    assert [h["handler"] for h in p.handlers if h["event"] == "ONIMCONNECTORMESSAGEADD"] == [hook]
    again = run_check(runtime, cid, now=utcnow())  # a second press changes nothing and still passes
    assert again.ok and len(p.handlers) == 1


def test_test_connection_names_the_hop_that_fails(runtime, portal):
    cid = make(runtime, oauth_settings(portal, **{**CHAT, "openlines_line_id": "99"}))
    result = run_check(runtime, cid, now=utcnow())
    assert not result.ok
    assert "not active on open line 99 (NOT_ACTIVE_LINE" in result.message
    assert result.details["openlines"]["registered"] == "connector whatsapp_hub registered"


def test_the_line_picker_lists_the_open_lines(runtime, portal):
    b24 = built(runtime, make(runtime, oauth_settings(portal, **CHAT)))
    assert b24.choices()["openlines_line_id"] == [("1", "WhatsApp sales"), ("2", "Support"), ("3", "Old line (inactive)")]


def test_the_emulator_refuses_like_the_portal(portal):
    p = portal.portal
    client = Bitrix24Client(oauth_settings(portal), http=requests.Session(), clock=utcnow)
    hook = Bitrix24Client(webhook_settings(portal), http=requests.Session(), clock=utcnow)
    item = openlines.message_item(factory.data("message.received", 1, n=1))
    send = {"CONNECTOR": "whatsapp_hub", "LINE": 1, "MESSAGES": [item]}
    with pytest.raises(Exception) as err:
        hook.call("imconnector.send.messages", send)
    assert err.value.code == "WRONG_AUTH_TYPE"
    with pytest.raises(Exception) as err:
        client.call("imconnector.send.messages", send)
    assert err.value.code == "IMCONNECTOR_NO_CORRECT_PROVIDER"
    client.call("imconnector.register", {"ID": "whatsapp_hub", "NAME": "x", "ICON": {"DATA_IMAGE": openlines.ICON},
                                         "PLACEMENT_HANDLER": "https://hub.example/p"})
    with pytest.raises(Exception) as err:
        client.call("imconnector.send.messages", send)
    assert err.value.code == "NOT_ACTIVE_LINE"
    with pytest.raises(Exception) as err:
        client.call("imconnector.activate", {"CONNECTOR": "whatsapp_hub", "LINE": 42, "ACTIVE": "1"})
    assert err.value.code == "NOT_ACTIVE_LINE"
    client.call("imconnector.activate", {"CONNECTOR": "whatsapp_hub", "LINE": 3, "ACTIVE": "1"})
    with pytest.raises(Exception) as err:  # the line itself is switched off
        client.call("imconnector.send.messages", {**send, "LINE": 3})
    assert err.value.code == "NOT_ACTIVE_LINE"
    client.call("imconnector.activate", {"CONNECTOR": "whatsapp_hub", "LINE": 1, "ACTIVE": "1"})
    answer = client.call("imconnector.send.messages", send)
    assert answer["SUCCESS"] and answer["DATA"]["RESULT"][0]["session"]["CHAT_ID"] == "1801"
    assert client.call("imconnector.status", {"CONNECTOR": "whatsapp_hub", "LINE": 1})["STATUS"] is True
    page = requests.get(f"{portal.base_url}/openlines", timeout=5).text
    assert "WhatsApp: Customer 1 Example" in page and "Message 1 of conversation 1" in page


def emit_messages(runtime, conversations: int, per: int) -> int:
    from hub.events.outbox import emit

    with runtime.db.scope() as session:
        for n in range(1, per + 1):
            for i in range(conversations):
                emit(session, "message.received", factory.data("message.received", i, n=n), now=utcnow(),
                     ordering_key=f"conversation:{5000 + i}")
    return conversations * per


def set_up(runtime, portal, **extra) -> int:
    cid = make(runtime, oauth_settings(portal, **{**CHAT, **extra}))
    assert run_check(runtime, cid, now=utcnow()).ok
    return cid


def test_whatsapp_messages_become_open_line_messages_once(runtime, portal):
    """120 conversations x 3 messages: 120 chats, 360 messages, each once; the
    send.messages calls carry up to 50 messages each."""
    set_up(runtime, portal)
    events = emit_messages(runtime, 120, 3)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": events}
    p = portal.portal
    assert len(p.ol.chats) == 120
    customer = [m for m in p.ol.messages.values() if m["author"] == "customer"]
    assert len(customer) == 360
    mids = [m["params"]["CONNECTOR_MID"][0] for m in customer]
    assert len(set(mids)) == 360
    room = p.ol.chats[("whatsapp_hub", 1, "5007")]
    assert [p.ol.messages[m]["text"] for m in room["messages"]] == [f"Message {n} of conversation 7" for n in (1, 2, 3)]
    assert p.ol.users["1007"]["phone"] == "+15557000007"
    calls = p.stats["methods"]["imconnector.send.messages"]
    assert calls <= 3 * 3  # a wave holds one message per conversation: 120 = 50 + 50 + 20
    assert p.stats["rate_limited"] == 0


def test_a_lost_answer_does_not_post_a_message_twice(runtime, portal):
    """The portal posts the message but its answer never arrives: the retry finds the
    message in its chat (CONNECTOR_MID) instead of sending it again."""
    cid = set_up(runtime, portal)
    emit_messages(runtime, 1, 1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    b24 = built(runtime, cid, timeout=0.3)
    second = factory.hub_event("message.received", 0, n=2)
    portal.portal.chaos.slow_next = [1.0]
    first_try = b24.deliver([second])
    assert first_try[0].status == "retry"
    retry = factory.hub_event("message.received", 0, n=2, attempt=2)
    b24 = built(runtime, cid)
    assert b24.deliver([retry])[0].status == "done"
    assert b24.deliver([retry])[0].status == "done"  # and once more: the link answers
    room = portal.portal.ol.chats[("whatsapp_hub", 1, "5000")]
    assert [portal.portal.ol.messages[m]["text"] for m in room["messages"]] == [
        "Message 1 of conversation 0", "Message 2 of conversation 0"]


def test_both_modes_write_the_timeline_and_the_chat(runtime, portal):
    set_up(runtime, portal, mode="both")
    events = factory.emit_conversations(runtime, 10)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": events}
    assert portal.counts() == {"contacts": 10, "deals": 10, "notes": 10 * factory.NOTES_PER_CONVERSATION}
    assert len(portal.portal.ol.chats) == 10
    assert sum(1 for m in portal.portal.ol.messages.values() if m["author"] == "customer") == 20


def test_5xx_and_lost_answers_end_with_exact_counts(database_url, tmp_path, portal):
    """40 chats: the first messages open them; then 5xx answers and answers that arrive
    after the client gave up (the portal did the work) while 80 more messages go out:
    every message is in its chat exactly once."""
    from hub.platform.runtime import Runtime
    from tests.conftest import make_config
    from tests.connectors.bitrix24.test_chaos import drain_until_settled

    config = make_config(database_url, tmp_path, delivery__http_timeout_seconds=0.5,
                         delivery__backoff_base_seconds=0.2, delivery__backoff_max_seconds=1)
    runtime = Runtime.from_config(config)
    try:
        set_up(runtime, portal)
        with runtime.db.scope() as session:
            from hub.events.outbox import emit

            for i in range(40):
                emit(session, "message.received", factory.data("message.received", i, n=1), now=utcnow(),
                     ordering_key=f"conversation:{5000 + i}")
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        assert drain_until_settled(runtime, worker, 40) == {"done": 40}
        p = portal.portal
        p.chaos.fail_next.extend([(500, "INTERNAL_SERVER_ERROR"), (502, "")])
        p.chaos.slow_next.extend([1.0, 0.0, 1.0])
        with runtime.db.scope() as session:
            for n in (2, 3):
                for i in range(40):
                    emit(session, "message.received", factory.data("message.received", i, n=n), now=utcnow(),
                         ordering_key=f"conversation:{5000 + i}")
        assert drain_until_settled(runtime, worker, 120) == {"done": 120}
        assert p.stats["injected"] >= 2
        for i in range(40):
            room = p.ol.chats[("whatsapp_hub", 1, str(5000 + i))]
            assert [p.ol.messages[m]["text"] for m in room["messages"]] == [
                f"Message {n} of conversation {i}" for n in (1, 2, 3)]
    finally:
        runtime.db.dispose()


def test_the_portals_random_faults_are_off_by_default_and_repeat_with_their_seed():
    from connectors.bitrix24.emulator import Chaos

    assert {Chaos().roll() for _ in range(1000)} == {""}
    runs = []
    for _ in range(2):
        chaos = Chaos(fail_rate=0.05, lost_rate=0.05)
        runs.append([chaos.roll() for _ in range(1000)])
    assert runs[0] == runs[1]
    assert 60 < sum(1 for r in runs[0] if r) < 140 and {"fail", "lost", ""} == set(runs[0])


# "both" also writes the timeline: 40 conversations keep it within the portal's burst.
@pytest.mark.parametrize("mode,conversations", [("openlines", 100), ("both", 40)])
def test_random_5xx_before_and_after_the_work_end_with_exact_counts(database_url, tmp_path, portal, mode,
                                                                    conversations):
    """10% of the portal's answers are 5xx from the seeded chaos knobs: half before the work,
    half after it (the answer lost), from the first message of each new contact on; the
    client takes no 5xx for an answer and the connector looks before it sends again. Every
    conversation ends with one chat holding each message once (and, in both modes, one
    contact, one deal and each note once)."""
    from hub.events.outbox import emit
    from hub.platform.runtime import Runtime
    from tests.conftest import make_config
    from tests.connectors.bitrix24.test_chaos import drain_until_settled

    config = make_config(database_url, tmp_path, delivery__backoff_base_seconds=0.05,
                         delivery__backoff_max_seconds=0.2)
    runtime = Runtime.from_config(config)
    try:
        set_up(runtime, portal, mode=mode)
        p = portal.portal
        p.chaos.fail_rate, p.chaos.lost_rate = 0.05, 0.05
        p.chaos.rng.seed(201)  # the 1st request after this is answered 502 after the work, the 3rd 500 before it
        with runtime.db.scope() as session:
            for n in (1, 2, 3):
                for i in range(conversations):
                    emit(session, "message.received", factory.data("message.received", i, n=n), now=utcnow(),
                         ordering_key=f"conversation:{5000 + i}")
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        assert drain_until_settled(runtime, worker, 3 * conversations) == {"done": 3 * conversations}
        assert p.stats["injected"] - p.stats["lost"] >= 1 and p.stats["lost"] >= 1
        assert len(p.ol.chats) == conversations
        for i in range(conversations):
            room = p.ol.chats[("whatsapp_hub", 1, str(5000 + i))]
            assert [p.ol.messages[m]["text"] for m in room["messages"]] == [
                f"Message {n} of conversation {i}" for n in (1, 2, 3)]
        if mode == "both":
            assert portal.counts() == {"contacts": conversations, "deals": conversations,
                                      "notes": 3 * conversations}
    finally:
        runtime.db.dispose()


def test_the_hubs_own_notice_coming_back_as_an_event_sends_nothing(runtime, portal):
    """Should the connector send system messages to the channel after all (registered by
    someone else with NEED_SYSTEM_MESSAGES=true), the hub's notice comes back as
    ONIMCONNECTORMESSAGEADD: it is recognised by its id and sends nothing."""
    from urllib.parse import urlencode

    from connectors.base import SendText
    from connectors.bitrix24 import webhooks
    from tests.connectors.bitrix24.test_webhooks import request_from

    cid = set_up(runtime, portal)
    emit_messages(runtime, 1, 1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    p = portal.portal
    p.ol.connectors["whatsapp_hub"]["NEED_SYSTEM_MESSAGES"] = True
    b24 = built(runtime, cid)
    command = SendText("hi", conversation_id=5000, idempotency_key="bitrix24.ol:1", crm_message_id="1801:1")
    b24.commands_done([command], [{"command": "SendText", "ok": False, "detail": "window_closed: closed",
                                   "message_id": None, "templates": []}])
    assert len(p.outbox) == 1
    form = p.event_form(p.outbox[0])
    commands = b24.handle_webhook(request_from(urlencode(form)))
    assert commands == []
    assert webhooks.parse_body(request_from(urlencode(form)))["event"] == "ONIMCONNECTORMESSAGEADD"


def test_a_lost_first_answer_of_a_returning_contacts_conversation_posts_once(runtime, portal):
    """The contact wrote before (its Bitrix24 user is known); the first message of a new
    conversation is posted but the answer is lost: the retry finds the chat by the user
    code (imopenlines.dialog.get) and the message in it."""
    cid = set_up(runtime, portal)
    emit_messages(runtime, 1, 1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    data = factory.data("message.received", 0, n=1)
    data["conversation"]["id"] = 6000
    data["message"] = {**data["message"], "id": 700001, "wa_message_id": "wamid.second-conversation"}
    event = factory.HubEvent(id="evt-new-conv", type="message.received", version=1, occurred_at=factory.T0,
                             data=data, ordering_key="conversation:6000")
    portal.portal.chaos.slow_next = [1.0]
    assert built(runtime, cid, timeout=0.3).deliver([event])[0].status == "retry"
    assert built(runtime, cid).deliver([event])[0].status == "done"
    room = portal.portal.ol.chats[("whatsapp_hub", 1, "6000")]
    assert len(room["messages"]) == 1
    assert portal.portal.stats["methods"]["imopenlines.dialog.get"] == 1


def test_a_lost_first_answer_of_a_new_contact_posts_once(runtime, portal):
    """Nothing was ever answered for this contact: no chat id, no Bitrix24 user. The
    portal opens the chat and posts the message, the answer is lost; the retry finds the
    chat among the line's sessions (imopenlines.v2.Session.list, by the user code holding
    the hub's conversation id) and the message in it: one chat, one message."""
    cid = set_up(runtime, portal)
    event = factory.hub_event("message.received", 0, n=1)
    p = portal.portal
    p.chaos.slow_next = [1.0]
    assert built(runtime, cid, timeout=0.3).deliver([event])[0].status == "retry"
    outcome = built(runtime, cid).deliver([factory.hub_event("message.received", 0, n=1, attempt=2)])[0]
    assert outcome.status == "done" and outcome.response["found"] is True
    assert list(p.ol.chats) == [("whatsapp_hub", 1, "5000")]
    assert sum(1 for m in p.ol.messages.values() if m["author"] == "customer") == 1
    assert p.stats["methods"]["imopenlines.v2.session.list"] == 1
    assert p.stats["methods"]["imconnector.send.messages"] == 1
    # The user the sessions named is kept: the contact's next conversation is looked up by it.
    from connectors.bitrix24.openlines import USER_LINK

    assert runtime_links(runtime, cid).get_many(USER_LINK, ["1000"]) == {"1000": p.ol.users["1000"]["ID"]}


def test_sessions_that_cannot_be_listed_send_the_first_message_again(runtime, portal):
    """A plan without Open Channels reports refuses imopenlines.v2.Session.list: the
    lost first message is sent again (README, "Exactly once"), not held for ever."""
    cid = set_up(runtime, portal)
    p = portal.portal
    p.ol.reports = False
    p.chaos.slow_next = [1.0]
    assert built(runtime, cid, timeout=0.3).deliver([factory.hub_event("message.received", 0, n=1)])[0].status \
        == "retry"
    assert built(runtime, cid).deliver([factory.hub_event("message.received", 0, n=1, attempt=2)])[0].status == "done"
    assert sum(1 for m in p.ol.messages.values() if m["author"] == "customer") == 2


def test_the_sessions_list_follows_the_documented_shape(runtime, portal):
    set_up(runtime, portal)
    emit_messages(runtime, 3, 1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    client = Bitrix24Client(oauth_settings(portal), http=requests.Session(), clock=utcnow)
    now = utcnow()
    page = client.call("imopenlines.v2.Session.list", {
        "configId": 1, "source": "whatsapp_hub", "dateCreateFrom": (now - timedelta(hours=1)).isoformat(),
        "dateCreateTo": (now + timedelta(hours=1)).isoformat(), "orderDirection": "asc", "limit": 2})
    assert page["hasNextPage"] is True
    first = page["sessions"][0]
    user = portal.portal.ol.users["1000"]["ID"]
    assert first["userCode"] == f"whatsapp_hub|1|5000|{user}" and first["userId"] == int(user)
    assert first["chatId"] == portal.portal.ol.chats[("whatsapp_hub", 1, "5000")]["chat_id"]
    with pytest.raises(MethodError) as err:
        client.call("imopenlines.v2.Session.list", {"dateCreateFrom": "2025-01-01T00:00:00+00:00",
                                                    "dateCreateTo": "2026-06-01T00:00:00+00:00"})
    assert err.value.code == "PERIOD_TOO_LARGE"
    earlier = client.call("imopenlines.v2.Session.list", {"configId": 2})
    assert earlier == {"sessions": [], "hasNextPage": False}


def runtime_links(runtime, cid):
    from hub.crm.links import DbLinkStore

    return DbLinkStore(runtime.db, cid)


def test_a_line_switched_off_in_bitrix24_shows_on_the_connector(runtime, portal):
    from hub.models import ConnectorRecord as Record

    cid = set_up(runtime, portal)
    portal.portal.ol.active.clear()  # someone disconnected the channel from the line
    emit_messages(runtime, 2, 1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    with runtime.db.scope() as session:
        record = session.get(Record, cid)
        assert record.health == "unhealthy"
        assert "is not active on open line 1" in record.health_message and "Test connection" in record.health_message
    assert statuses(runtime).get("done", 0) == 0
