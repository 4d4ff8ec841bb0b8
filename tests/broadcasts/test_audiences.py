"""Audiences: CSV in UTF-8 and Windows-1251, `;` and `,`, with a per-row report (bad
number, duplicate, opted out); segments over contacts and their conversations."""
from __future__ import annotations

from datetime import timedelta

import pytest

from hub.broadcasts import audiences, consent, segments
from hub.broadcasts.csv_upload import CsvProblem, parse_csv
from hub.platform.db import utcnow
from hub.models import Channel, Contact, Conversation


def test_utf8_with_commas():
    parsed = parse_csv("phone,first_name,order\n+4915112345678,Ana,1042\n+44 7700 900123,Bob,7\n".encode())
    assert parsed.delimiter == "," and parsed.encoding == "utf-8"
    assert parsed.rows == [
        {"row": 2, "phone": "+4915112345678", "variables": {"first_name": "Ana", "order": "1042"}},
        {"row": 3, "phone": "+447700900123", "variables": {"first_name": "Bob", "order": "7"}}]
    assert parsed.columns == ["first_name", "order"] and parsed.refused == []


def test_windows_1251_with_semicolons_and_russian_headers():
    data = "Телефон;Имя\n8 912 000-11-22;Иван\n+7 912 000 11 23;Мария\n".encode("cp1251")
    parsed = parse_csv(data, region="RU")
    assert parsed.encoding == "windows-1251" and parsed.delimiter == ";"
    assert [(r["phone"], r["variables"]["Имя"]) for r in parsed.rows] == [
        ("+79120001122", "Иван"), ("+79120001123", "Мария")]


def test_utf8_bom_is_not_part_of_the_header():
    parsed = parse_csv("\ufeffphone;name\n+4915112345678;Ana\n".encode("utf-8"))
    assert parsed.phone_column == "phone" and len(parsed.rows) == 1


def test_each_refused_row_is_named_with_its_reason():
    data = b"phone,name\n+4915112345678,Ana\nnot a number,X\n,Empty\n+49 151 12345678,Again\n"
    parsed = parse_csv(data)
    assert [(r["row"], r["reason"]) for r in parsed.refused] == [
        (3, "bad_number"), (4, "bad_number"), (5, "duplicate")]
    assert "row 2" in parsed.refused[2]["detail"]


def test_a_file_without_a_phone_column_is_refused_naming_its_columns():
    with pytest.raises(CsvProblem) as caught:
        parse_csv(b"name,city\nAna,Berlin\n")
    assert caught.value.field == "phone" and "'name'" in str(caught.value)


def make_contact(session, wa_id, name="", *, channel_id=None, last_inbound=None, source=None):
    now = utcnow()
    contact = Contact(wa_id=wa_id, phone=f"+{wa_id}", name=name, created_at=now, updated_at=now)
    session.add(contact)
    session.flush()
    if channel_id is not None:
        session.add(Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=now,
                                 last_inbound_at=last_inbound, lead_source=source, created_at=now, updated_at=now))
        session.flush()
    return contact


def test_opted_out_rows_are_refused_at_upload(runtime):
    now = utcnow()
    with runtime.db.scope() as s:
        c = make_contact(s, "4915112345678")
        consent.record(s, c, "marketing", "opted_out", source="api", at=now, now=now)
    with runtime.db.scope() as s:
        audience = audiences.create_from_csv(s, name="x", data=b"phone\n+4915112345678\n+4915112345679\n", now=now)
        assert [r["phone"] for r in audience.rows] == ["+4915112345679"]
        assert [(r["row"], r["reason"]) for r in audience.refused] == [(2, "opted_out")]
        # A utility audience may still reach them.
        utility = audiences.create_from_csv(s, name="u", data=b"phone\n+4915112345678\n", subscription="utility",
                                            now=now)
        assert len(utility.rows) == 1


def test_segments_over_channel_last_message_name_and_lead_source(runtime):
    from tests.support.whatsapp import make_channel

    a, _ = make_channel(runtime)
    b, _ = make_channel(runtime, phone_number_id="2200000000000009", name="Other")
    now = utcnow()
    with runtime.db.scope() as s:
        make_contact(s, "4915100000001", "Ana", channel_id=a, last_inbound=now - timedelta(days=1),
                     source={"kind": "tracked_link", "utm_source": "vk"})
        make_contact(s, "4915100000002", "Bob", channel_id=a, last_inbound=now - timedelta(days=40),
                     source={"kind": "direct"})
        make_contact(s, "4915100000003", "Anatoly", channel_id=b, last_inbound=now - timedelta(days=2))
        make_contact(s, "4915100000004", "Never", channel_id=a, last_inbound=None)
    with runtime.db.scope() as s:
        def names(segment):
            return [s.get(Contact, m["contact_id"]).name for m in segments.evaluate(s, segment, now=now)]

        assert names({"channel_id": a}) == ["Ana", "Bob", "Never"]
        assert names({"last_message_within_days": 7}) == ["Ana", "Anatoly"]
        assert names({"last_message_older_than_days": 30}) == ["Bob", "Never"]
        assert names({"name_contains": "ana"}) == ["Ana", "Anatoly"]
        assert names({"lead_source": "tracked_link"}) == ["Ana"]
        assert names({"utm_source": "vk", "channel_id": b}) == []
        members = segments.evaluate(s, {"channel_id": a, "last_message_within_days": 7}, now=now)
        assert members[0]["phone"] == "+4915100000001" and members[0]["variables"] == {"name": "Ana"}


def test_unknown_segment_filters_are_refused_by_name():
    with pytest.raises(segments.SegmentProblem) as caught:
        segments.validate({"zodiac": "leo"})
    assert caught.value.field == "zodiac"
    with pytest.raises(segments.SegmentProblem):
        segments.validate({"last_message_within_days": "seven"})
