"""Telegram updates (tests/fixtures/telegram, Bot API bodies) as the hub's values: a test
per fixture; parsing is pure."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hub.channels.telegram.parse import callback_answer, parse
from hub.channels.telegram.types import GroupEvent, Ignored, MemberChange, TelegramMessage
from hub.events.raw_webhooks import PayloadError
from tests.support.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "telegram"
ANA = 111222333


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def message(name: str) -> TelegramMessage:
    parsed = parse(fixture(name))
    assert parsed.update_id == json.loads(fixture(name))["update_id"]
    assert isinstance(parsed.item, TelegramMessage), parsed.item
    assert parsed.item.sender.id == ANA and parsed.item.chat_id == ANA
    return parsed.item


def test_every_fixture_has_a_test():
    names = {p.stem for p in FIXTURES.glob("*.json")}
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert names <= tested, f"fixtures without a test: {sorted(names - tested)}"


def test_message__text():
    m = message("message__text")
    assert (m.type, m.text, m.message_id, m.edit) == ("text", "Hi, is the blue sofa still available?", 101, False)
    assert m.date == datetime.fromtimestamp(1765100101, tz=timezone.utc)
    assert (m.sender.name, m.sender.username, m.sender.contact_key) == ("Ana Silva", "ana_silva", "tg:111222333")
    assert m.media is None and m.reply_to_message_id is None


def test_message__start_deep_link():
    m = message("message__start_deep_link")
    assert (m.type, m.text) == ("text", "/start c-AbC123")


def test_message__photo():
    m = message("message__photo")
    assert (m.type, m.text, m.original_type) == ("image", "This one", "photo")
    assert m.media["id"] == "AgACAgIAAxkBAAIBZ2Large", "the largest size"
    assert (m.media["mime_type"], m.media["file_size"], m.media["caption"]) == ("image/jpeg", 71200, "This one")


def test_message__document():
    m = message("message__document")
    assert (m.type, m.text, m.original_type) == ("document", "The invoice", None)
    assert m.media == {"id": "BQACAgIAAxkBAAIBaGDoc", "unique_id": "AgADdoc", "mime_type": "application/pdf",
                       "filename": "invoice-42.pdf", "file_size": 48211, "caption": "The invoice"}


def test_message__voice():
    m = message("message__voice")
    assert (m.type, m.original_type, m.text) == ("audio", "voice", None)
    assert m.media["id"] == "AwACAgIAAxkBAAIBaVoice" and m.media["mime_type"] == "audio/ogg"
    assert m.content == {"voice": True, "duration": 4}


def test_message__video():
    m = message("message__video")
    assert (m.type, m.media["id"], m.media["filename"]) == ("video", "BAACAgIAAxkBAAIBalVideo", "sofa.mp4")
    assert m.content == {"duration": 12}


def test_message__location():
    m = message("message__location")
    assert (m.type, m.content) == ("location", {"latitude": 38.722252, "longitude": -9.139337})


def test_message__venue():
    m = message("message__venue")
    assert (m.type, m.original_type) == ("location", "venue")
    assert m.content == {"latitude": 38.7, "longitude": -9.1, "name": "Sofa Store", "address": "Rua Augusta 1"}


def test_message__contact():
    m = message("message__contact")
    assert (m.type, m.original_type, m.text) == ("contacts", "contact", "Ana Silva +351912345678")
    assert m.content["phone_number"] == "+351912345678" and m.content["user_id"] == ANA


def test_message__reply():
    m = message("message__reply")
    assert (m.type, m.text, m.reply_to_message_id) == ("text", "Yes, that one", 55)


def test_edited_message__text():
    m = message("edited_message__text")
    assert m.edit and m.message_id == 101 and m.text.endswith("(the 3-seater)")
    assert m.edit_date == datetime.fromtimestamp(1765100300, tz=timezone.utc)


def test_message__sticker():
    m = message("message__sticker")
    assert (m.type, m.media["id"], m.content["emoji"]) == ("sticker", "CAACAgIAAxkBAAIBbStick", "\N{THUMBS UP SIGN}")


def test_message__poll():
    m = message("message__poll")
    assert (m.type, m.original_type) == ("unsupported", "poll")


def test_my_chat_member__kicked():
    item = parse(fixture("my_chat_member__kicked")).item
    assert isinstance(item, MemberChange) and item.blocked and item.user.id == ANA
    assert (item.old_status, item.new_status) == ("member", "kicked")


def test_my_chat_member__member():
    item = parse(fixture("my_chat_member__member")).item
    assert isinstance(item, MemberChange) and not item.blocked and item.new_status == "member"


BO = 222333444
GROUP = -4012345678


def group_item(name: str):
    parsed = parse(fixture(name))
    assert parsed.update_id == json.loads(fixture(name))["update_id"]
    return parsed.item


def test_message__supergroup_text():
    m = group_item("message__supergroup_text")
    assert isinstance(m, TelegramMessage) and m.in_group and m.chat_type == "supergroup"
    assert (m.chat_id, m.chat_title, m.contact_key, m.sender.id) == \
        (-1001234567890, "Sofa fans", "tg:-1001234567890", ANA)
    assert m.member == {"id": "tg:111222333", "name": "Ana Silva", "username": "ana_silva"}


def test_message__group_text():
    m = group_item("message__group_text")
    assert isinstance(m, TelegramMessage) and (m.chat_type, m.chat_id, m.contact_key) == \
        ("group", GROUP, f"tg:{GROUP}")
    assert (m.type, m.text, m.chat_title) == ("text", "Is the grey sofa in stock?", "Sofa buyers")


def test_a_private_message_names_no_member():
    m = message("message__text")
    assert not m.in_group and m.member is None and m.contact_key == "tg:111222333"


def test_message__group_new_chat_members():
    e = group_item("message__group_new_chat_members")
    assert isinstance(e, GroupEvent) and (e.kind, e.chat_id, e.message_id) == ("joined", GROUP, 32)
    assert [m.id for m in e.members] == [BO] and e.actor.id == ANA


def test_message__group_left_chat_member():
    e = group_item("message__group_left_chat_member")
    assert isinstance(e, GroupEvent) and e.kind == "left" and [m.name for m in e.members] == ["Bo"]


def test_message__group_new_chat_title():
    e = group_item("message__group_new_chat_title")
    assert isinstance(e, GroupEvent) and (e.kind, e.title) == ("title", "Sofa buyers 2026")


def test_message__group_migrate_to_chat_id():
    e = group_item("message__group_migrate_to_chat_id")
    assert isinstance(e, GroupEvent) and (e.kind, e.old_chat_id, e.new_chat_id) == \
        ("migrated", GROUP, -1009876543210)


def test_message__group_migrate_from_chat_id():
    e = group_item("message__group_migrate_from_chat_id")
    assert isinstance(e, GroupEvent) and (e.kind, e.old_chat_id, e.new_chat_id) == \
        ("migrated", GROUP, -1009876543210)


def test_my_chat_member__group_left():
    item = group_item("my_chat_member__group_left")
    assert isinstance(item, MemberChange) and item.in_group and item.blocked
    assert (item.contact_key, item.new_status, item.chat_title) == (f"tg:{GROUP}", "left", "Sofa buyers")


def test_a_private_left_is_not_a_block():
    data = json.loads(fixture("my_chat_member__kicked"))
    data["my_chat_member"]["new_chat_member"] = {"user": data["my_chat_member"]["new_chat_member"]["user"],
                                                 "status": "left"}
    item = parse(json.dumps(data).encode()).item
    assert isinstance(item, MemberChange) and not item.blocked and not item.restored


def test_message__group_contact():
    m = group_item("message__group_contact")
    assert isinstance(m, TelegramMessage) and m.in_group and m.type == "contacts"
    assert m.content["user_id"] == ANA and m.contact_key == f"tg:{GROUP}"


def test_message__group_anonymous_admin():
    m = group_item("message__group_anonymous_admin")
    assert isinstance(m, TelegramMessage) and m.member == {"id": "tg:1087968824", "name": "Sofa fans",
                                                           "username": None}


def test_a_channel_post_is_not_a_conversation():
    data = json.loads(fixture("message__group_text"))
    data["message"]["chat"] = {"id": -1001111111111, "title": "News", "type": "channel"}
    item = parse(json.dumps(data).encode()).item
    assert isinstance(item, Ignored) and "channel chats" in item.reason


def test_callback_query__button():
    m = message("callback_query__button")
    assert (m.type, m.text, m.callback_id, m.reply_to_message_id) == ("interactive", "Blue", "4382bfdwdsb323b2d9", 56)
    assert m.content == {"button_reply": {"id": "sofa:blue", "title": "Blue"}}
    assert callback_answer(fixture("callback_query__button")) == {"method": "answerCallbackQuery",
                                                          "callback_query_id": "4382bfdwdsb323b2d9"}
    assert callback_answer(fixture("message__text")) is None and callback_answer(b"{") is None


@pytest.mark.parametrize("body, problem", [
    (b"{", "not JSON"), (b"[]", "JSON object"), (b'{"message": {}}', "update_id"),
    (b'{"update_id": "1"}', "update_id"), (b'{"update_id": 1, "message": []}', "message is not an object"),
    (b'{"update_id": 1, "message": {"chat": {"type": "private", "id": 1}, "from": {"id": 1}, "date": 1}}',
     "message_id"),
    (b'{"update_id": 1, "message": {"message_id": 1, "chat": {"type": "private", "id": 1}, "from": {"id": 1},'
     b' "date": 1, "photo": []}}', "photo has no sizes"),
    (b'\xff\xfe', "not JSON"),
])
def test_bodies_that_are_not_updates_are_refused_by_name(body, problem):
    with pytest.raises(PayloadError, match=problem):
        parse(body)
