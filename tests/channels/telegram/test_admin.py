"""Telegram bots in the admin: added by token (getMe and setWebhook against the
emulator), the page (never the token), edit, webhook again, removal."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.channels.telegram.emulator import TelegramEmulator
from hub.models import Channel
from tests.support.admin import field_errors, post, signed_in
from tests.support.telegram import FlaskTransport


def test_a_bot_is_added_shown_edited_and_removed_in_the_admin(app, client, runtime):
    admin = signed_in(app, runtime, "admin")
    emu = TelegramEmulator(transport=FlaskTransport(client))
    bot = emu.add_bot("shop_bot", "Shop")
    with emu.serve() as base:
        page = admin.get("/admin/channels").get_data(as_text=True)
        assert "/admin/channels/telegram/new" in page
        r = post(admin, "/admin/channels/telegram/new", {"name": "", "bot_token": "nope", "api_base_url": base},
                 page="/admin/channels/telegram/new")
        assert r.status_code == 422 and field_errors(r.get_data(as_text=True), "name") == ["Required."]
        r = post(admin, "/admin/channels/telegram/new", {"name": "Shop", "bot_token": "123456:" + "Z" * 35,
                                                         "api_base_url": base}, page="/admin/channels/telegram/new")
        assert r.status_code == 422 and "refused this token" in r.get_data(as_text=True)
        r = post(admin, "/admin/channels/telegram/new", {"name": "Shop", "bot_token": bot.token, "api_base_url": base},
                 page="/admin/channels/telegram/new")
        assert r.status_code == 302, r.get_data(as_text=True)
        with runtime.db.scope() as s:
            channel = s.scalars(select(Channel)).one()
            channel_id, key = channel.id, channel.key
        assert bot.webhook_url == f"http://hub.test/webhooks/telegram/{key}"
        page = admin.get(r.headers["Location"]).get_data(as_text=True)
        assert "@shop_bot" in page and bot.webhook_url in page and "webhook registered" in page.lower()
        assert bot.token not in page and bot.secret_token not in page

        edit = f"/admin/channels/{channel_id}/edit"
        assert bot.token not in admin.get(edit).get_data(as_text=True)
        r = post(admin, edit, {"name": "Shop desk", "bot_token": ""}, page=edit)
        assert r.status_code == 302
        with runtime.db.scope() as s:
            assert s.get(Channel, channel_id).name == "Shop desk"

        bot.webhook_url = ""
        r = post(admin, f"/admin/channels/{channel_id}/telegram/webhook", page=f"/admin/channels/{channel_id}")
        assert r.status_code == 302 and bot.webhook_url.endswith(key)

        r = post(admin, f"/admin/channels/{channel_id}/telegram/remove", page=f"/admin/channels/{channel_id}")
        assert r.status_code == 302 and bot.webhook_url == ""
        with runtime.db.scope() as s:
            assert s.scalar(select(func.count()).select_from(Channel)) == 0


def test_operators_cannot_add_or_remove_bots(app, runtime):
    operator = signed_in(app, runtime, "operator")
    assert operator.get("/admin/channels/telegram/new").status_code in (302, 403)
