"""/api/v1/channels/telegram: a bot added by its token (getMe, setWebhook with a random
secret and the hub's base_url), shown without its token, renamed, re-registered and
removed (deleteWebhook) — against the Bot API emulator."""
from __future__ import annotations

import logging

from sqlalchemy import func, select

from hub.channels.telegram.emulator import TelegramEmulator
from hub.models import Channel
from tests.support.telegram import FlaskTransport, fixture, post_update


def test_a_bot_is_added_shown_renamed_and_removed(client, runtime, admin_headers, viewer_headers, caplog):
    caplog.set_level(logging.DEBUG)
    emu = TelegramEmulator(transport=FlaskTransport(client))
    bot = emu.add_bot("shop_bot", "Shop")
    with emu.serve() as base:
        r = client.post("/api/v1/channels/telegram", headers=admin_headers,
                        json={"name": "Shop", "bot_token": bot.token, "api_base_url": base})
        assert r.status_code == 201, r.json
        out = r.json
        assert (out["kind"], out["provider"], out["display_number"], out["phone_number_id"]) == \
            ("telegram", "bot_api", "@shop_bot", f"tg:{bot.id}")
        assert out["webhook_error"] is None and out["health"] == "ok"
        assert out["secrets_set"] == ["bot_token"]
        assert bot.webhook_url == out["webhook_url"] and bot.webhook_url.startswith(
            "http://hub.test/webhooks/telegram/")
        assert len(bot.secret_token) >= 32
        channel_id = out["id"]

        listed = client.get("/api/v1/channels", headers=viewer_headers).json
        assert [c["kind"] for c in listed] == ["telegram"] and "webhook_url" not in listed[0]
        for body in (r.get_data(as_text=True), str(listed)):
            assert bot.token not in body and bot.secret_token not in body
        with runtime.db.scope() as session:
            assert bot.token not in session.get(Channel, channel_id).secrets_enc

        # The webhook works with the secret the hub gave Telegram.
        emu.user(bot, 42, "Ana").send_text("hi")
        assert emu.flush() == 1

        r = client.post("/api/v1/channels/telegram", headers=admin_headers,
                        json={"name": "Again", "bot_token": bot.token, "api_base_url": base})
        assert r.status_code == 422 and "already a channel" in r.json["errors"]["json"]["bot_token"][0]

        r = client.patch(f"/api/v1/channels/telegram/{channel_id}", headers=admin_headers, json={"name": "Shop 2"})
        assert r.status_code == 200 and r.json["name"] == "Shop 2"
        other = emu.add_bot("other_bot")
        r = client.patch(f"/api/v1/channels/telegram/{channel_id}", headers=admin_headers,
                         json={"bot_token": other.token})
        assert r.status_code == 422 and "another bot (@other_bot)" in r.json["errors"]["json"]["bot_token"][0]
        r = client.patch(f"/api/v1/channels/{channel_id}", headers=admin_headers, json={"name": "x"})
        assert r.status_code == 409 and "/api/v1/channels/telegram/" in r.json["message"]

        bot.webhook_url = ""
        r = client.post(f"/api/v1/channels/telegram/{channel_id}/webhook", headers=admin_headers)
        assert r.status_code == 200 and bot.webhook_url == out["webhook_url"]

        assert client.delete(f"/api/v1/channels/telegram/{channel_id}", headers=viewer_headers).status_code == 403
        r = client.delete(f"/api/v1/channels/telegram/{channel_id}", headers=admin_headers)
        assert r.status_code == 200 and r.json == {"id": channel_id, "webhook_error": None}
        assert bot.webhook_url == "" and bot.secret_token is None
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Channel)) == 0
        assert client.delete(f"/api/v1/channels/telegram/{channel_id}", headers=admin_headers).status_code == 404
    assert bot.token not in caplog.text and bot.token.split(":")[1] not in caplog.text


def test_a_refused_token_and_an_unreachable_telegram_are_named(client, runtime, admin_headers):
    emu = TelegramEmulator(transport=FlaskTransport(client))
    with emu.serve() as base:
        r = client.post("/api/v1/channels/telegram", headers=admin_headers,
                        json={"name": "Shop", "bot_token": "123456:" + "A" * 35, "api_base_url": base})
        assert r.status_code == 422 and "refused this token (401 Unauthorized)" in r.json["errors"]["json"]["bot_token"][0]
    r = client.post("/api/v1/channels/telegram", headers=admin_headers,
                    json={"name": "Shop", "bot_token": "123456:" + "A" * 35, "api_base_url": "http://127.0.0.1:9"})
    assert r.status_code == 422 and "could not be reached" in r.json["errors"]["json"]["bot_token"][0]
    r = client.post("/api/v1/channels/telegram", headers=admin_headers, json={"name": "Shop", "bot_token": "nope"})
    assert r.status_code == 422 and r.json["errors"]["json"]["bot_token"] == ["not a bot token from @BotFather"]
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Channel)) == 0


def test_a_refused_set_webhook_leaves_the_channel_unhealthy_with_telegrams_words(client, runtime, admin_headers):
    emu = TelegramEmulator(transport=FlaskTransport(client))
    bot = emu.add_bot("shop_bot")
    emu.fail_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
    with emu.serve() as base:
        r = client.post("/api/v1/channels/telegram", headers=admin_headers,
                        json={"name": "Shop", "bot_token": bot.token, "api_base_url": base})
        assert r.status_code == 201
        assert r.json["health"] == "unhealthy" and "HTTPS url must be provided" in r.json["health_message"]
        assert r.json["webhook_error"].startswith("setWebhook was refused: 400")
        r = client.post(f"/api/v1/channels/telegram/{r.json['id']}/webhook", headers=admin_headers)
        assert r.json["health"] == "ok" and r.json["webhook_error"] is None
