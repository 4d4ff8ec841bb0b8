"""The Bot API emulator and the hub's client against it: the methods the hub calls,
Telegram's answers and error bodies, files, per-chat limits, updates to a webhook."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests

from hub.channels.telegram import compose
from hub.channels.telegram.client import TelegramClient, TelegramError
from hub.channels.telegram.emulator import TelegramEmulator
from hub.channels.base import SendRefused
from tests.support.clock import FakeClock


class Recorder:
    def __init__(self, status: int = 200):
        self.status = status
        self.posts: list[tuple[str, dict, dict]] = []

    def __call__(self, url, body, headers):
        self.posts.append((url, json.loads(body), dict(headers)))
        return type("R", (), {"status_code": self.status})()


@pytest.fixture
def world():
    clock = FakeClock(datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc))
    hook = Recorder()
    emu = TelegramEmulator(clock, transport=hook)
    bot = emu.add_bot("shop_bot", "Shop")
    with emu.serve() as base:
        yield emu, bot, TelegramClient(bot.token, requests.Session(), base), hook, clock


def test_get_me_and_the_webhook_methods(world):
    emu, bot, client, hook, _ = world
    me = client.get_me()
    assert (me.id, me.username, me.first_name) == (bot.id, "shop_bot", "Shop")
    client.set_webhook("https://hub.example/webhooks/telegram/k", "s3cret_-X")
    info = client.webhook_info()
    assert info["url"] == "https://hub.example/webhooks/telegram/k" and "my_chat_member" in info["allowed_updates"]
    with pytest.raises(TelegramError) as bad:
        client.set_webhook("https://hub.example/x", "not allowed!")
    assert (bad.value.code, bad.value.description) == (400, "Bad Request: secret token contains unallowed characters")
    client.delete_webhook()
    assert client.webhook_info()["url"] == ""


def test_an_unknown_token_is_401_and_never_in_the_error(world):
    emu, bot, client, *_ = world
    other = TelegramClient("123:" + "x" * 35, requests.Session(), client.base_url)
    with pytest.raises(TelegramError) as refused:
        other.get_me()
    assert refused.value.code == 401 and "x" * 35 not in str(refused.value)
    assert bot.token not in repr(client)


def test_a_user_writes_and_the_update_reaches_the_webhook_with_the_secret(world):
    emu, bot, client, hook, _ = world
    client.set_webhook("https://hub.example/hook", "tok_1")
    ana = emu.user(bot, 42, "Ana", "Silva", username="ana")
    ana.send_text("/start c-XYZ")
    ana.send_photo(b"jpeg-bytes", caption="look")
    assert emu.flush(duplicate=True) == 2
    assert [p[0] for p in hook.posts] == ["https://hub.example/hook"] * 4
    assert all(p[2]["X-Telegram-Bot-Api-Secret-Token"] == "tok_1" for p in hook.posts)
    first, _, second, _ = (p[1] for p in hook.posts)
    assert second["update_id"] == first["update_id"] + 1
    assert first["message"]["entities"][0]["type"] == "bot_command"
    assert first["message"]["chat"] == {"id": 42, "type": "private", "first_name": "Ana", "last_name": "Silva",
                                        "username": "ana"}
    file_id = second["message"]["photo"][-1]["file_id"]
    info = client.get_file(file_id)
    assert client.download(info["file_path"], max_bytes=100) == b"jpeg-bytes"
    with pytest.raises(TelegramError, match="larger than 3 bytes"):
        client.download(info["file_path"], max_bytes=3)


def test_a_refused_update_is_posted_again_until_accepted(world):
    emu, bot, client, hook, _ = world
    client.set_webhook("https://hub.example/hook", "tok")
    hook.status = 500
    emu.user(bot, 7, "Bo").send_text("hello")
    assert emu.flush(max_rounds=2) == 0 and len(bot.pending) == 1
    hook.status = 200
    assert emu.flush() == 1 and not bot.pending
    assert emu.world.deliveries[0].attempts == [500, 500, 200]


def test_sending_replies_media_and_telegrams_errors(world):
    emu, bot, client, _, clock = world
    ana = emu.user(bot, 42, "Ana")
    asked = ana.send_text("price?")
    sent = client.send("sendMessage", {"chat_id": 42, "text": "12 EUR",
                                       "reply_parameters": {"message_id": asked["message_id"]}})
    assert sent["reply_to_message"]["text"] == "price?" and sent["from"]["is_bot"]
    photo = client.send("sendPhoto", {"chat_id": 42, "photo": "https://example.com/a.jpg", "caption": "it"})
    assert photo["caption"] == "it" and photo["photo"][0]["file_id"]
    with pytest.raises(TelegramError, match="400 Bad Request: chat not found"):
        client.send("sendMessage", {"chat_id": 99, "text": "who?"})
    with pytest.raises(TelegramError, match="message is too long"):
        client.send("sendMessage", {"chat_id": 42, "text": "x" * 4097})
    with pytest.raises(TelegramError, match="message to be replied not found"):
        client.send("sendMessage", {"chat_id": 42, "text": "x", "reply_parameters": {"message_id": 999}})
    ana.block()
    with pytest.raises(TelegramError) as blocked:
        client.send("sendMessage", {"chat_id": 42, "text": "still there?"})
    assert (blocked.value.code, blocked.value.description) == (403, "Forbidden: bot was blocked by the user")
    assert bot.pending[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"


def test_the_per_chat_limit_answers_429_with_retry_after(world):
    emu, bot, client, _, clock = world
    emu.user(bot, 42, "Ana").send_text("hi")
    for i in range(5):
        client.send("sendMessage", {"chat_id": 42, "text": f"{i}"})
    with pytest.raises(TelegramError) as limited:
        client.send("sendMessage", {"chat_id": 42, "text": "one too many"})
    assert limited.value.code == 429 and limited.value.retry_after == 1
    clock.now += timedelta(seconds=1)
    client.send("sendMessage", {"chat_id": 42, "text": "after the wait"})


def test_injected_failures(world):
    emu, bot, client, *_ = world
    emu.fail_next("getMe", 502, "Bad Gateway")
    with pytest.raises(TelegramError, match="502 Bad Gateway"):
        client.get_me()
    assert client.get_me().id == bot.id


def test_compose_is_telegrams_shape_and_limits():
    text = compose.compose("text", {"body": "hello", "preview_url": False})
    assert compose.request(text, chat_id=42, reply_to_message_id=7) == {"method": "sendMessage", "body": {
        "chat_id": 42, "text": "hello", "link_preview_options": {"is_disabled": True},
        "reply_parameters": {"message_id": 7, "allow_sending_without_reply": True}}}
    doc = compose.compose("document", {"id": "BQAC", "caption": "invoice"})
    assert (doc.method, doc.body) == ("sendDocument", {"document": "BQAC", "caption": "invoice"})
    assert compose.compose("location", {"latitude": 1, "longitude": 2}).method == "sendLocation"
    with pytest.raises(SendRefused, match="4097 characters; Telegram takes at most 4096"):
        compose.compose("text", {"body": "x" * 4097})
    with pytest.raises(SendRefused, match="cannot send 'reaction'"):
        compose.compose("reaction", {})
    buttons = compose.compose("interactive", {"type": "button", "body": {"text": "Which colour?"},
                                              "action": {"buttons": [{"type": "reply", "reply": {"id": "blue", "title": "Blue"}},
                                                                     {"type": "reply", "reply": {"id": "green", "title": "Green"}}]}})
    assert buttons.body == {"text": "Which colour?", "reply_markup": {"inline_keyboard": [
        [{"text": "Blue", "callback_data": "blue"}], [{"text": "Green", "callback_data": "green"}]]}}
    assert buttons.text == "Which colour?\n[Blue] | [Green]"
    with pytest.raises(SendRefused, match="1 to 64 bytes"):
        compose.compose("interactive", {"type": "button", "body": {"text": "x"},
                                        "action": {"buttons": [{"type": "reply", "reply": {"id": "x" * 65, "title": "X"}}]}})
    with pytest.raises(SendRefused, match="link"):
        compose.compose("image", {"caption": "no file"})
    assert compose.message_id_of(compose.message_key(3, 42, 17)) == 17
    assert compose.message_id_of("wamid.X") is None
