"""Segments over tags, custom contact fields and the CRM stage a connector last reported,
combined with the conversation filters; each is a condition of one SQL statement, and a
bad segment is refused naming the part at fault."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from hub.broadcasts import audiences, segments
from hub.conversations.tags_and_fields import change_fields, change_tags
from hub.crm import contact_stages
from hub.models import Audience, Contact
from hub.platform.db import utcnow
from tests.broadcasts.test_audiences import make_contact


@pytest.fixture
def people(runtime):
    """Ana (vip, Berlin, won in sales), Bob (new, Moscow, lead in sales, then won in
    support), Cleo (vip and new, city set empty, no deal), Dan (nothing, wrote long ago)."""
    from tests.support.whatsapp import make_channel

    a, _ = make_channel(runtime)
    b, _ = make_channel(runtime, phone_number_id="2200000000000009", name="Other")
    now = utcnow()
    with runtime.db.scope() as s:
        ana = make_contact(s, "4915100000001", "Ana", channel_id=a, last_inbound=now - timedelta(days=1))
        bob = make_contact(s, "4915100000002", "Bob", channel_id=a, last_inbound=now - timedelta(days=3))
        cleo = make_contact(s, "4915100000003", "Cleo", channel_id=b, last_inbound=now - timedelta(days=2))
        dan = make_contact(s, "4915100000004", "Dan", channel_id=a, last_inbound=now - timedelta(days=90))
        change_tags(s, ana.id, add=["vip"], now=now)
        change_tags(s, bob.id, add=["new"], now=now)
        change_tags(s, cleo.id, add=["vip", "new"], now=now)
        change_fields(s, ana.id, {"city": "Berlin", "tier": "gold"}, now=now)
        change_fields(s, bob.id, {"city": "Moscow"}, now=now)
        change_fields(s, cleo.id, {"city": ""}, now=now)
        contact_stages.record(s, contact_id=ana.id, deal={"id": "d1", "stage": "142", "stage_name": "Won",
                                                          "pipeline": "sales", "outcome": "won"},
                              connector_id=None, now=now)
        contact_stages.record(s, contact_id=bob.id, deal={"id": "d2", "stage": "7", "stage_name": "Lead",
                                                          "pipeline": "sales", "outcome": "open"},
                              connector_id=None, now=now)
        contact_stages.record(s, contact_id=bob.id, deal={"id": "d3", "stage": "142", "stage_name": "Won",
                                                          "pipeline": "support", "outcome": "won"},
                              connector_id=None, now=now)
    return {"a": a, "b": b, "now": now, "ids": {"Ana": ana.id, "Bob": bob.id, "Cleo": cleo.id, "Dan": dan.id}}


def names(session, segment, now):
    return [session.get(Contact, m["contact_id"]).name for m in segments.evaluate(session, segment, now=now)]


def test_has_tag_and_any_of_tags(runtime, people):
    with runtime.db.scope() as s:
        now = people["now"]
        assert names(s, {"tag": "vip"}, now) == ["Ana", "Cleo"]
        assert names(s, {"tag": " new "}, now) == ["Bob", "Cleo"]
        assert names(s, {"tags_any": ["vip", "new"]}, now) == ["Ana", "Bob", "Cleo"]  # Cleo once
        assert names(s, {"tags_any": ["nobody-has-this"]}, now) == []
        assert names(s, {"tag": "vip", "tags_any": ["new"]}, now) == ["Cleo"]


def test_a_field_equals_a_value_or_is_set(runtime, people):
    with runtime.db.scope() as s:
        now = people["now"]
        assert names(s, {"field": {"name": "city", "equals": "Berlin"}}, now) == ["Ana"]
        assert names(s, {"field": {"name": "city", "equals": "berlin"}}, now) == []  # the value exactly
        assert names(s, {"field": {"name": "city"}}, now) == ["Ana", "Bob"]  # Cleo's is empty: not set
        assert names(s, {"field": {"name": "city", "equals": ""}}, now) == ["Cleo"]
        assert names(s, {"field": [{"name": "city"}, {"name": "tier", "equals": "gold"}]}, now) == ["Ana"]


def test_the_crm_stage_the_connector_last_reported(runtime, people):
    with runtime.db.scope() as s:
        now = people["now"]
        assert names(s, {"crm_stage": "142"}, now) == ["Ana", "Bob"]  # by id, any pipeline
        assert names(s, {"crm_stage": "Won"}, now) == ["Ana", "Bob"]  # by name
        assert names(s, {"crm_stage": {"stage": "Won", "pipeline": "sales"}}, now) == ["Ana"]
        assert names(s, {"crm_stage": {"stage": "Lead", "pipeline": "sales"}}, now) == ["Bob"]
    with runtime.db.scope() as s:  # Bob's sales deal moves on: his old stage no longer matches
        contact_stages.record(s, contact_id=people["ids"]["Bob"], connector_id=None,
                              now=people["now"] + timedelta(minutes=1),
                              deal={"id": "d2", "stage": "143", "stage_name": "Lost", "pipeline": "sales",
                                    "outcome": "lost"})
    with runtime.db.scope() as s:
        assert names(s, {"crm_stage": {"stage": "Lead", "pipeline": "sales"}}, people["now"]) == []
        assert names(s, {"crm_stage": {"stage": "143", "pipeline": "sales"}}, people["now"]) == ["Bob"]


def test_new_filters_combine_with_the_conversation_filters(runtime, people):
    with runtime.db.scope() as s:
        now = people["now"]
        assert names(s, {"tag": "vip", "channel_id": people["a"]}, now) == ["Ana"]
        assert names(s, {"tags_any": ["vip", "new"], "last_message_within_days": 2}, now) == ["Ana", "Cleo"]
        assert names(s, {"crm_stage": "Won", "field": {"name": "city", "equals": "Moscow"}}, now) == ["Bob"]
        assert names(s, {"last_message_older_than_days": 30, "tags_any": ["vip"]}, now) == []
        assert names(s, {"last_message_older_than_days": 30}, now) == ["Dan"]


def test_a_segment_is_read_and_counted_in_one_statement(runtime, people):
    segment = {"tags_any": ["vip", "new"], "field": [{"name": "city"}], "crm_stage": "Won", "channel_id": people["a"],
               "last_message_within_days": 30, "lead_source": "direct"}
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = runtime.db.engine
    with runtime.db.scope() as s:
        s.connection()  # the session's transaction begins before counting
        event.listen(engine, "before_cursor_execute", seen)
        try:
            found = segments.evaluate(s, segment, now=people["now"])
            counted = segments.count(s, segment, now=people["now"])
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert found == [] and counted == 0  # nobody came from "direct"
    assert len(statements) == 2 and all(st.count("EXISTS") == 4 for st in statements), statements
    with runtime.db.scope() as s:
        segment.pop("lead_source")
        found = segments.evaluate(s, segment, now=people["now"])
        assert segments.count(s, segment, now=people["now"]) == len(found) == 2


@pytest.mark.parametrize("segment, field", [
    ({"tag": 7}, "tag"),
    ({"tag": "  "}, "tag"),
    ({"tag": "-vip"}, "tag"),
    ({"tags_any": "vip"}, "tags_any"),
    ({"tags_any": []}, "tags_any"),
    ({"tags_any": ["vip", 3]}, "tags_any[1]"),
    ({"field": "city"}, "field"),
    ({"field": {"equals": "Berlin"}}, "field.name"),
    ({"field": {"name": "City"}}, "field.name"),
    ({"field": {"name": "city", "equals": 5}}, "field.equals"),
    ({"field": {"name": "city", "like": "B%"}}, "field.like"),
    ({"field": [{"name": "city"}, {"name": "name"}]}, "field[1].name"),
    ({"field": []}, "field"),
    ({"crm_stage": 142}, "crm_stage"),
    ({"crm_stage": {"pipeline": "sales"}}, "crm_stage.stage"),
    ({"crm_stage": {"stage": "Won", "pipeline": ""}}, "crm_stage.pipeline"),
    ({"crm_stage": {"stage": "Won", "funnel": "x"}}, "crm_stage.funnel"),
    ({"zodiac": "leo"}, "zodiac"),
    ({"field": {"name": "city", "equals": "Ber\x00lin"}}, "field.equals"),
    ({"crm_stage": {"stage": "Won", "pipeline": "\ud800"}}, "crm_stage.pipeline"),
    ({"name_contains": "a\x00"}, "name_contains"),
])
def test_bad_segments_are_refused_naming_the_part(segment, field):
    with pytest.raises(segments.SegmentProblem) as caught:
        segments.validate(segment)
    assert caught.value.field == field, str(caught.value)


def test_unknown_fields_and_stages_are_refused_when_saved_and_nothing_is_written(runtime, people):
    now = people["now"]
    for segment, field in [({"field": {"name": "citty"}}, "field.name"),
                           ({"field": [{"name": "city"}, {"name": "zip"}]}, "field[1].name"),
                           ({"crm_stage": "Negotiation"}, "crm_stage.stage"),
                           ({"crm_stage": {"stage": "Lead", "pipeline": "support"}}, "crm_stage.stage")]:
        with runtime.db.scope() as s:
            with pytest.raises(segments.SegmentProblem) as caught:
                audiences.create_segment(s, name="typo", segment=segment, now=now)
            assert caught.value.field == field and repr(segment_value(segment)) in str(caught.value)
    with runtime.db.scope() as s:
        assert s.query(Audience).count() == 0
        saved = audiences.create_segment(s, name="vip in Berlin", now=now, segment={
            "tag": "vip", "field": {"name": "city", "equals": "Berlin"}, "crm_stage": {"stage": "Won"}})
        assert saved.segment == {"tag": "vip", "field": [{"name": "city", "equals": "Berlin"}],
                                 "crm_stage": {"stage": "Won"}}
        assert [m["phone"] for m in audiences.members(s, saved, now=now)] == ["+4915100000001"]
        assert audiences.definition(saved) == {"id": saved.id, "name": "vip in Berlin", "kind": "segment",
                                               "segment": saved.segment}


def segment_value(segment):
    if "crm_stage" in segment:
        stage = segment["crm_stage"]
        return stage if isinstance(stage, str) else stage["stage"]
    field = segment["field"]
    return (field if isinstance(field, dict) else field[-1])["name"]


@pytest.fixture
def linked(runtime):
    """Eva's WhatsApp contact is one person with her Telegram contact, which holds the tag,
    the field, the CRM stage, the lead source and the recent message; Finn is one person
    with two WhatsApp numbers, both tagged; Gus (tagged elsewhere) is nobody's."""
    from hub.conversations import persons
    from hub.models import Conversation
    from tests.support.whatsapp import make_channel

    wa, _ = make_channel(runtime)
    tg, _ = make_channel(runtime, phone_number_id="2200000000000019", name="Telegram-like")
    now = utcnow()
    with runtime.db.scope() as s:
        eva = make_contact(s, "4915100000011", "Eva", channel_id=wa, last_inbound=now - timedelta(days=60))
        eva_tg = Contact(user_id="tg:5011", name="Eva T", created_at=now, updated_at=now)
        s.add(eva_tg)
        s.flush()
        s.add(Conversation(channel_id=tg, contact_id=eva_tg.id, status="open", opened_at=now,
                           last_inbound_at=now - timedelta(hours=2), lead_source={"kind": "tracked_link"},
                           created_at=now, updated_at=now))
        change_tags(s, eva_tg.id, add=["vip"], now=now)
        change_fields(s, eva_tg.id, {"city": "Riga"}, now=now)
        contact_stages.record(s, contact_id=eva_tg.id, deal={"id": "d9", "stage": "5", "stage_name": "Offer",
                                                             "pipeline": "sales", "outcome": "open"},
                              connector_id=None, now=now)
        persons.link(s, eva_tg, eva, reason=persons.OPERATOR, now=now)
        finn = make_contact(s, "4915100000012", "Finn", channel_id=wa, last_inbound=now - timedelta(days=3))
        finn2 = make_contact(s, "4915100000013", "Finn 2", channel_id=wa, last_inbound=now - timedelta(days=3))
        persons.link(s, finn2, finn, reason=persons.OPERATOR, now=now)
        change_tags(s, finn.id, add=["vip"], now=now)
        change_tags(s, finn2.id, add=["vip"], now=now)
        gus = make_contact(s, "4915100000014", "Gus", channel_id=wa, last_inbound=now - timedelta(days=60))
        change_tags(s, gus.id, add=["other"], now=now)
    return {"wa": wa, "now": now}


@pytest.mark.parametrize("segment, expected", [
    ({"tag": "vip"}, ["Eva", "Finn"]),
    ({"tags_any": ["vip", "none"]}, ["Eva", "Finn"]),
    ({"field": {"name": "city", "equals": "Riga"}}, ["Eva"]),
    ({"crm_stage": {"stage": "Offer", "pipeline": "sales"}}, ["Eva"]),
    ({"lead_source": "tracked_link"}, ["Eva"]),
    ({"last_message_within_days": 1, "tag": "vip"}, ["Eva"]),  # Eva wrote on Telegram two hours ago
    ({"last_message_older_than_days": 30}, ["Gus"]),  # ... so she is not among those silent for 30 days
])
def test_a_person_matches_through_any_of_their_contacts_and_is_sent_once(runtime, linked, segment, expected):
    with runtime.db.scope() as s:
        found = segments.evaluate(s, segment, now=linked["now"])
        assert [s.get(Contact, m["contact_id"]).name for m in found] == expected
        assert all(m["phone"].startswith("+49") for m in found)  # the person's WhatsApp number
        assert segments.count(s, segment, now=linked["now"]) == len(expected)
