"""Signed bodies with values no real webhook carries: NUL, unpaired surrogates, ids too
long for their columns, nesting a thousand levels deep. Each is kept and answered 200;
the part at fault is repaired (and marked) or refused (and named); the rest of the batch
is stored. Without this Meta resends such a batch for days and loses it whole."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from hub.models import Contact, Conversation, Event, Message, MessageStatus, RawWebhook
from hub.events.storable import MAX_DEPTH, TOO_DEEP, flatten_deep, load, repair_text
from tests.support.whatsapp import PHONE_NUMBER_ID, envelope, fixture, make_channel, post_signed

VALUE_META = {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID}


def text_message(n: int, body: str = "hello", sender: str = "15557654321") -> dict:
    return {"from": sender, "id": f"wamid.hostile.{n}", "timestamp": str(1795000300 + n), "type": "text",
            "text": {"body": body}}


def batch(*messages: dict, name: str = "Ana") -> bytes:
    senders = sorted({m["from"] for m in messages})
    return envelope({"messaging_product": "whatsapp", "metadata": VALUE_META,
                     "contacts": [{"profile": {"name": name}, "wa_id": s} for s in senders],
                     "messages": list(messages)})


@pytest.fixture
def key(runtime):
    return make_channel(runtime)[1]


def stored(runtime) -> dict[str, Message]:
    with runtime.db.scope() as session:
        return {m.wa_message_id: m for m in session.scalars(select(Message))}


def the_raw(runtime) -> RawWebhook:
    with runtime.db.scope() as session:
        return session.scalars(select(RawWebhook)).one()


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "x\udfffy\x00", "\x00" * 5])
def test_nul_and_lone_surrogates_in_text_are_repaired_and_the_batch_stored(client, runtime, key, bad):
    body = batch(text_message(1), text_message(2, f"odd {bad} text"), text_message(3))
    assert post_signed(client, key, body).status_code == 200
    messages = stored(runtime)
    assert sorted(messages) == ["wamid.hostile.1", "wamid.hostile.2", "wamid.hostile.3"]
    odd = messages["wamid.hostile.2"]
    assert odd.text.startswith("odd ") and "\x00" not in odd.text and "\ufffd" in odd.text
    assert odd.payload["parse_errors"] == ["text.body: NUL or unpaired surrogate replaced with U+FFFD"] or \
        odd.payload["parse_errors"] == ["text.body: NUL character replaced with U+FFFD"]
    assert "parse_errors" not in messages["wamid.hostile.1"].payload
    raw = the_raw(runtime)
    assert raw.body == body and raw.status == "processed"
    assert "entry[0].changes[0].value.messages[1].text.body" in raw.error


@pytest.mark.parametrize("bad", ["Ana\x00", "\ud800Ana", "A" * 300])
def test_odd_profile_names_are_stored(client, runtime, key, bad):
    body = batch(text_message(1), name=bad)
    assert post_signed(client, key, body).status_code == 200
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
    assert "\x00" not in contact.name and len(contact.name) <= 256 and contact.name.strip("\ufffd")
    assert list(stored(runtime)) == ["wamid.hostile.1"]


@pytest.mark.parametrize("field, value, fault", [
    ("from", "1" * 33, "messages[1].from: longer than 32 characters (33)"),
    ("id", "wamid." + "x" * 250, "messages[1].id: longer than 255 characters (256)"),
    ("timestamp", "99999999999999999999", "messages[1].timestamp: '99999999999999999999' is out of range"),
])
def test_a_message_that_cannot_be_stored_is_refused_alone(client, runtime, key, field, value, fault):
    bad = text_message(2)
    bad[field] = value
    body = batch(text_message(1), bad, text_message(3))
    assert post_signed(client, key, body).status_code == 200
    assert sorted(stored(runtime)) == ["wamid.hostile.1", "wamid.hostile.3"]
    raw = the_raw(runtime)
    assert raw.body == body
    assert raw.status == "failed", "the refused message can be replayed once the hub takes it"
    assert f"entry[0].changes[0].value.{fault}" in raw.error


def test_a_status_too_long_for_its_column_is_refused_alone(client, runtime, key):
    statuses = [{"id": "wamid.out.1", "status": "delivered", "timestamp": "1795000303", "recipient_id": "15557654321"},
                {"id": "wamid.out.1", "status": "s" * 17, "timestamp": "1795000304", "recipient_id": "15557654321"}]
    body = envelope({"messaging_product": "whatsapp", "metadata": VALUE_META, "statuses": statuses})
    assert post_signed(client, key, body).status_code == 200
    with runtime.db.scope() as session:
        assert [s.status for s in session.scalars(select(MessageStatus))] == ["delivered"]
    assert "statuses[1].status: longer than 16 characters" in the_raw(runtime).error


def nested(depth: int) -> str:
    """JSON text nested `depth` levels (json.dumps itself cannot write it that deep)."""
    opens = "".join('[' if i % 2 else '{"k": ' for i in range(depth))
    closes = "".join(']' if i % 2 else '}' for i in reversed(range(depth)))
    return opens + '"bottom"' + closes


def with_deep(body: bytes, depth: int) -> bytes:
    return body.replace(b'"__DEEP__"', nested(depth).encode())


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 1200, 5000])
def test_deep_nesting_inside_a_message_refuses_or_trims_only_that_message(client, runtime, key, depth):
    deep = text_message(2)
    deep["interactive_extra"] = "__DEEP__"
    body = with_deep(batch(text_message(1), deep, text_message(3)), depth)
    assert post_signed(client, key, body).status_code == 200
    messages = stored(runtime)
    assert sorted(messages) == ["wamid.hostile.1", "wamid.hostile.2", "wamid.hostile.3"]
    notes = messages["wamid.hostile.2"].payload["parse_errors"]
    assert len(notes) == 1 and f"nested deeper than {MAX_DEPTH} levels" in notes[0]
    assert the_raw(runtime).body == body


def test_a_body_nested_deeply_at_the_top_is_kept_and_its_messages_stored(client, runtime, key):
    doc = json.loads(batch(text_message(1)))
    doc["extra"] = "__DEEP__"
    body = with_deep(json.dumps(doc).encode(), 3000)
    assert post_signed(client, key, body).status_code == 200
    assert list(stored(runtime)) == ["wamid.hostile.1"]
    assert the_raw(runtime).body == body


def test_an_unbalanced_deep_body_is_kept_as_failed(client, runtime, key):
    body = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 3000
    assert post_signed(client, key, body).status_code == 200
    raw = the_raw(runtime)
    assert raw.status == "failed" and raw.body == body and "not JSON" in raw.error


def test_flatten_deep_keeps_strings_with_brackets_and_escapes():
    text = json.dumps({"a": "[[{{\\\"]]", "b": "__DEEP__"}).replace('"__DEEP__"', nested(MAX_DEPTH + 3))
    doc = json.loads(flatten_deep(text))
    assert doc["a"] == "[[{{\\\"]]"
    again, notes = load(json.dumps(doc))
    assert any(v == f"nested deeper than {MAX_DEPTH} levels: replaced (kept in the raw webhook)"
               for v in notes.values())
    assert TOO_DEEP in json.dumps(again)


def test_a_value_the_database_refuses_stores_the_rest_part_by_part(client, runtime, key, monkeypatch):
    """A fault on one odd value (here: the message store refusing one message) must not
    cost the batch: the body is stored again part by part and only that part refused."""
    from hub.channels.whatsapp.inbound import ingest

    real = ingest.store_inbound

    def picky(session, channels, m, now, **kw):
        if m.id == "wamid.hostile.2":
            raise ValueError("a value this hub cannot store")
        return real(session, channels, m, now, **kw)

    monkeypatch.setattr(ingest, "store_inbound", picky)
    body = batch(text_message(1), text_message(2), text_message(3))
    assert post_signed(client, key, body).status_code == 200
    assert sorted(stored(runtime)) == ["wamid.hostile.1", "wamid.hostile.3"]
    raw = the_raw(runtime)
    assert raw.status == "failed" and raw.body == body
    assert raw.error == ("entry[0].changes[0].value.messages[1]: could not be stored "
                         "(ValueError: a value this hub cannot store)")
    with runtime.db.scope() as session:
        received = session.scalars(select(Event).where(Event.type == "message.received")).all()
    assert len(received) == 2, "the refused part's events are rolled back with it"

    monkeypatch.setattr(ingest, "store_inbound", real)
    from hub.platform.db import utcnow
    from hub.events.raw_webhooks import replay
    assert replay(runtime, now=utcnow()) == {"processed": 1, "failed": 0}
    assert sorted(stored(runtime)) == ["wamid.hostile.1", "wamid.hostile.2", "wamid.hostile.3"]


def test_a_value_too_wide_for_postgresql_is_refused_alone(client, runtime, key):
    """PostgreSQL enforces column widths the parser does not check (here a template's
    language code): the data error sends the body through the part-by-part path, which
    refuses only that change (on SQLite, which keeps any width, it simply stores)."""
    template = json.loads(fixture("message_template_status_update__approved"))
    template["entry"][0]["changes"][0]["value"]["message_template_language"] = "x" * 40
    doc = json.loads(batch(text_message(1), text_message(2)))
    doc["entry"][0]["changes"].append(template["entry"][0]["changes"][0])
    body = json.dumps(doc).encode()
    assert post_signed(client, key, body).status_code == 200
    assert sorted(stored(runtime)) == ["wamid.hostile.1", "wamid.hostile.2"]
    raw = the_raw(runtime)
    assert raw.body == body
    if runtime.db.dialect == "postgresql":
        assert raw.status == "failed"
        assert raw.error.startswith("item 2 (TemplateEvent): could not be stored "
                                    "(StringDataRightTruncation: value too long"), raw.error
    else:
        assert raw.status == "processed"


# --- the property: any string in any text field --------------------------------------------

TEMPLATE = json.loads(batch(text_message(1, "first"), text_message(2, "second", sender="15551112222"),
                            {"from": "15557654321", "id": "wamid.hostile.3", "timestamp": "1795000302",
                             "type": "reaction", "reaction": {"message_id": "wamid.hostile.2", "emoji": "x"}},
                            name="Ana Souza"))
TEMPLATE["entry"][0]["changes"][0]["value"]["statuses"] = [
    {"id": "wamid.out.1", "status": "delivered", "timestamp": "1795000303", "recipient_id": "15557654321",
     "pricing": {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}}]


def string_places(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from string_places(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from string_places(v, path + (i,))
    elif isinstance(value, str):
        yield path


PLACES = list(string_places(TEMPLATE))
MESSAGE_PLACES = {f"entry[0].changes[0].value.messages[{i}]": f"wamid.hostile.{i + 1}" for i in range(3)}


def with_values(changes: dict) -> dict:
    doc = json.loads(json.dumps(TEMPLATE))
    for path, value in changes.items():
        holder = doc
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = value
    return doc


ANY_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40) | \
    st.sampled_from(["", " ", "\x00", "\ud800", "9" * 40, "x" * 300])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(PLACES), ANY_TEXT, min_size=1, max_size=4))
def test_any_string_anywhere_never_500s_and_loses_nothing(client, runtime, key, changes):
    with runtime.db.scope() as session:  # each example starts empty
        for model in (Event, MessageStatus, Message, Conversation, Contact, RawWebhook):
            session.execute(delete(model))
    doc = with_values(changes)
    body = json.dumps(doc).encode()
    response = post_signed(client, key, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    raw = the_raw(runtime)
    assert raw.body == body
    messages = stored(runtime)
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(RawWebhook)) == 1
    if any(path[-1] in ("object", "field", "phone_number_id") for path in changes):
        return  # not a messages change for this number any more: kept raw, not applied (by design)
    for place, wamid in MESSAGE_PLACES.items():
        sent_id = repair_text(doc["entry"][0]["changes"][0]["value"]["messages"][int(place[-2])]["id"])
        if any(isinstance(m, Message) and m.wa_message_id == sent_id for m in messages.values()):
            continue
        # Not stored: then the raw webhook says why (the message's place, or the body's).
        assert raw.status == "failed" and raw.error, (place, changes)
        assert place in raw.error or raw.error.startswith("body") or "entry[0]" in raw.error, (place, raw.error)


@pytest.mark.parametrize("path", ["/webhooks/whatsapp/%00", "/webhooks/whatsapp/a%00b", "/webhooks/connectors/%00",
                                  "/webhooks/connectors/x%00", "/webhooks/whatsapp/" + "k" * 65,
                                  "/webhooks/connectors/" + "k" * 65])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_nul_or_overlong_key_is_not_found(client, runtime, key, path, method):
    response = client.open(path, method=method, data=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 404
