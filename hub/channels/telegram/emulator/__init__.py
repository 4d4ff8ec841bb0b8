"""A local fake of the Telegram Bot API, for tests, benchmarks and demos only
(production code never imports it). It follows https://core.telegram.org/bots/api:

- POST|GET /bot<token>/<method>: getMe, setWebhook, deleteWebhook, getWebhookInfo,
  sendMessage (with an inline keyboard), sendPhoto, sendDocument, sendVideo, sendAudio,
  sendVoice, sendSticker, sendLocation, sendVenue, getFile, answerCallbackQuery; answers {"ok": true, "result": ...} or
  {"ok": false, "error_code", "description", "parameters": {"retry_after"}}: 401 for an
  unknown token, 400 "chat not found" for a user who never wrote, 403 "bot was blocked
  by the user", 429 with retry_after past the per-chat (1/s, burst 5) or per-bot (30/s)
  limit, and any error injected with fail_next();
- GET /file/bot<token>/<file_path>: a file's bytes after getFile;
- a method in the JSON answer to a webhook POST is run (answerCallbackQuery).

Make a user write to the bot; the update is POSTed to the webhook set with setWebhook,
with X-Telegram-Bot-Api-Secret-Token, when flush() runs (retried on non-2xx)::

    emu = TelegramEmulator(transport=FlaskClientTransport(hub_client))
    bot = emu.add_bot("shop_bot")
    with emu.serve() as base_url:            # the hub's channel api_base_url
        ana = emu.user(bot, 111, "Ana", username="ana")
        ana.send_text("Hi!")
        emu.flush()                          # the hub receives the update
        emu.sent                             # what the bot sent (Sent: method, body, message)
        fans = emu.group(bot, -1001234567890, "Sofa fans", "supergroup")
        fans.say(ana, "hello all")           # a group chat: join, leave, rename, upgrade, remove_bot
"""
from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

from flask import Flask, Response, request

from hub.channels.emulator_http import HttpTransport, serving
from hub.channels.telegram.emulator import api
from hub.channels.telegram.emulator.state import ApiError, Bot, Delivery, File, Sent, World, dumps, now_unix

__all__ = ["TelegramEmulator", "User", "Group", "Bot", "Sent", "File", "ApiError", "HttpTransport"]


class User:
    """A Telegram user in a private chat with one bot."""

    def __init__(self, emu: "TelegramEmulator", bot: Bot, user_id: int, first_name: str, last_name: str = "",
                 username: str | None = None, language_code: str | None = "en"):
        self.emu, self.bot, self.id = emu, bot, user_id
        self.profile = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            self.profile["last_name"] = last_name
        if username:
            self.profile["username"] = username
        if language_code:
            self.profile["language_code"] = language_code
        world = emu.world
        world.users[user_id] = {k: v for k, v in self.profile.items() if k in ("first_name", "last_name", "username")}
        world.chats.setdefault((bot.id, user_id), {})

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private",
                **{k: v for k, v in self.profile.items() if k in ("first_name", "last_name", "username")}}

    def _message(self, reply_to: int | None = None, **content: Any) -> dict[str, Any]:
        world = self.emu.world
        message = {"message_id": world.next_message_id(self.bot, self.id), "from": dict(self.profile),
                   "chat": self.chat, "date": now_unix(world.clock), **content}
        if reply_to is not None:
            quoted = world.chats[(self.bot.id, self.id)].get(reply_to)
            if quoted is not None:
                message["reply_to_message"] = quoted
        world.remember(self.bot, self.id, message)
        world.blocked.discard((self.bot.id, self.id))  # writing again unblocks the bot
        self.emu.world.new_update(self.bot, message=message)
        return message

    def send_text(self, text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        extra = {"entities": [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]} \
            if text.startswith("/") else {}
        return self._message(reply_to, text=text, **extra)

    def send_photo(self, data: bytes = b"\xff\xd8\xff\xe0fake-jpeg", caption: str | None = None) -> dict[str, Any]:
        f = self.emu.world.add_file(data, kind="photo", mime_type="image/jpeg", extension="jpg")
        sizes = [{"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": len(data),
                  "width": 1280, "height": 960}]
        return self._message(photo=sizes, **({"caption": caption} if caption else {}))

    def send_document(self, data: bytes, file_name: str, mime_type: str = "application/pdf",
                      caption: str | None = None) -> dict[str, Any]:
        f = self.emu.world.add_file(data, kind="document", mime_type=mime_type, extension=file_name.rsplit(".", 1)[-1])
        doc = {"file_name": file_name, "mime_type": mime_type, "file_id": f.file_id,
               "file_unique_id": f.file_unique_id, "file_size": len(data)}
        return self._message(document=doc, **({"caption": caption} if caption else {}))

    def send_voice(self, data: bytes = b"OggS-fake", duration: int = 3) -> dict[str, Any]:
        f = self.emu.world.add_file(data, kind="voice", mime_type="audio/ogg", extension="oga")
        return self._message(voice={"duration": duration, "mime_type": "audio/ogg", "file_id": f.file_id,
                                    "file_unique_id": f.file_unique_id, "file_size": len(data)})

    def send_location(self, latitude: float, longitude: float) -> dict[str, Any]:
        return self._message(location={"latitude": latitude, "longitude": longitude})

    def share_contact(self, phone_number: str) -> dict[str, Any]:
        contact = {"phone_number": phone_number, "first_name": self.profile["first_name"], "user_id": self.id}
        return self._message(contact=contact)

    def edit(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        edited = {**message, "text": text, "edit_date": now_unix(self.emu.world.clock)}
        self.emu.world.remember(self.bot, self.id, edited)
        self.emu.world.new_update(self.bot, edited_message=edited)
        return edited

    def press(self, message: dict[str, Any], callback_data: str) -> dict[str, Any]:
        """The user presses a button of the bot's inline keyboard on `message`."""
        world = self.emu.world
        query = {"id": f"{self.id}{len(world.callbacks) + 1:06d}", "from": dict(self.profile), "message": message,
                 "chat_instance": f"-{self.bot.id}{self.id}", "data": callback_data}
        world.callbacks.add(query["id"])
        world.new_update(self.bot, callback_query=query)
        return query

    def _member(self, old: str, new: str) -> None:
        me = {"id": self.bot.id, "is_bot": True, "first_name": self.bot.first_name, "username": self.bot.username}
        new_member: dict[str, Any] = {"user": me, "status": new}
        if new == "kicked":
            new_member["until_date"] = 0
        self.emu.world.new_update(self.bot, my_chat_member={
            "chat": self.chat, "from": dict(self.profile), "date": now_unix(self.emu.world.clock),
            "old_chat_member": {"user": me, "status": old}, "new_chat_member": new_member})

    def block(self, *, notify: bool = True) -> None:
        """The user blocks the bot: sends fail with 403; `notify`: a my_chat_member update."""
        self.emu.world.blocked.add((self.bot.id, self.id))
        if notify:
            self._member("member", "kicked")

    def unblock(self) -> None:
        self.emu.world.blocked.discard((self.bot.id, self.id))
        self._member("kicked", "member")

    def received(self) -> list[Sent]:
        return [s for s in self.emu.world.sent if s.chat_id == self.id and s.message["from"]["id"] == self.bot.id]


class Group:
    """A group (or supergroup) the bot is a member of: members write in it, join and
    leave, rename it; it can become a supergroup (a new chat id) and remove the bot."""

    def __init__(self, emu: "TelegramEmulator", bot: Bot, chat_id: int, title: str, chat_type: str = "group"):
        self.emu, self.bot, self.id, self.title, self.type = emu, bot, chat_id, title, chat_type
        emu.world.groups[(bot.id, chat_id)] = self
        emu.world.chats.setdefault((bot.id, chat_id), {})

    @property
    def chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "title": self.title, "type": self.type}
        if self.type == "group":
            chat["all_members_are_administrators"] = True
        return chat

    def _message(self, member: "User", **content: Any) -> dict[str, Any]:
        world = self.emu.world
        message = {"message_id": world.next_message_id(self.bot, self.id), "from": dict(member.profile),
                   "chat": self.chat, "date": now_unix(world.clock), **content}
        world.remember(self.bot, self.id, message)
        world.new_update(self.bot, message=message)
        return message

    def say(self, member: "User", text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if reply_to is not None and (quoted := self.emu.world.chats[(self.bot.id, self.id)].get(reply_to)):
            extra["reply_to_message"] = quoted
        return self._message(member, text=text, **extra)

    def share_contact(self, member: "User", phone_number: str) -> dict[str, Any]:
        return self._message(member, contact={"phone_number": phone_number,
                                              "first_name": member.profile["first_name"], "user_id": member.id})

    def join(self, member: "User", *, added_by: "User | None" = None) -> dict[str, Any]:
        by = added_by or member
        return self._message(by, new_chat_member=dict(member.profile), new_chat_participant=dict(member.profile),
                             new_chat_members=[dict(member.profile)])

    def leave(self, member: "User", *, removed_by: "User | None" = None) -> dict[str, Any]:
        by = removed_by or member
        return self._message(by, left_chat_member=dict(member.profile), left_chat_participant=dict(member.profile))

    def rename(self, member: "User", title: str) -> dict[str, Any]:
        self.title = title
        return self._message(member, new_chat_title=title)

    def upgrade(self, member: "User", new_chat_id: int) -> "Group":
        """The group becomes a supergroup, as Telegram tells it: migrate_to_chat_id in the
        old group, migrate_from_chat_id in the new one; the old chat id is gone."""
        world = self.emu.world
        self._message(member, migrate_to_chat_id=new_chat_id)
        del world.groups[(self.bot.id, self.id)]
        world.upgraded[(self.bot.id, self.id)] = new_chat_id
        new = Group(self.emu, self.bot, new_chat_id, self.title, "supergroup")
        new_message = {"message_id": world.next_message_id(self.bot, new_chat_id), "from": dict(member.profile),
                       "chat": new.chat, "date": now_unix(world.clock), "migrate_from_chat_id": self.id}
        world.remember(self.bot, new_chat_id, new_message)
        world.new_update(self.bot, message=new_message)
        return new

    def remove_bot(self, member: "User") -> None:
        """A member removes the bot: my_chat_member "left", and sends fail with 403."""
        world = self.emu.world
        world.blocked.add((self.bot.id, self.id))
        me = {"id": self.bot.id, "is_bot": True, "first_name": self.bot.first_name, "username": self.bot.username}
        world.new_update(self.bot, my_chat_member={
            "chat": self.chat, "from": dict(member.profile), "date": now_unix(world.clock),
            "old_chat_member": {"user": me, "status": "member"}, "new_chat_member": {"user": me, "status": "left"}})

    def received(self) -> list[Sent]:
        return [s for s in self.emu.world.sent if s.chat_id == self.id]


class TelegramEmulator:
    def __init__(self, clock: Callable[[], datetime] | None = None, *,
                 transport: Callable[[str, bytes, Mapping[str, str]], Any] | None = None, **limits: Any):
        self.world = World(clock, **limits)
        self.transport = transport or HttpTransport()
        self.base_url: str | None = None
        self.app = create_app(self)

    # -- the world ------------------------------------------------------------------
    def add_bot(self, username: str = "hub_test_bot", first_name: str = "Hub Test", token: str | None = None) -> Bot:
        return self.world.add_bot(username, first_name, token)

    def user(self, bot: Bot, user_id: int, first_name: str, last_name: str = "", username: str | None = None,
             language_code: str | None = "en") -> User:
        return User(self, bot, user_id, first_name, last_name, username, language_code)

    def group(self, bot: Bot, chat_id: int, title: str, chat_type: str = "group") -> Group:
        """A group the bot is in (chat ids of groups are negative: -100... for supergroups)."""
        return Group(self, bot, chat_id, title, chat_type)

    def fail_next(self, method: str | None, code: int, description: str, *, retry_after: int | None = None,
                  count: int = 1) -> None:
        self.world.fail_next(method, code, description, retry_after, count)

    @property
    def sent(self) -> list[Sent]:
        return list(self.world.sent)

    # -- webhooks -------------------------------------------------------------------
    def flush(self, *, duplicate: bool = False, max_rounds: int = 5) -> int:
        """POST every pending update to its bot's webhook, in order, each until a 2xx
        (at most `max_rounds` tries per flush); `duplicate`: each accepted one once more,
        as Telegram does when an answer is lost. Returns how many were accepted."""
        accepted = 0
        for bot in list(self.world.bots.values()):
            for _ in range(max_rounds):
                if not bot.pending or not bot.webhook_url:
                    break
                while bot.pending:
                    update = bot.pending[0]
                    if not self._post(bot, update):
                        break
                    bot.pending.popleft()
                    accepted += 1
                    if duplicate:
                        self._post(bot, update)
        return accepted

    def _post(self, bot: Bot, update: dict[str, Any]) -> bool:
        delivery = next((d for d in self.world.deliveries if d.update is update), None)
        if delivery is None:
            delivery = Delivery(update)
            self.world.deliveries.append(delivery)
        headers = {"Content-Type": "application/json"}
        if bot.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = bot.secret_token
        try:
            answer = self.transport(bot.webhook_url, dumps(update), headers)
            status = int(answer.status_code)
        except Exception:
            status = 0
        delivery.attempts.append(status)
        if 200 <= status < 300:
            self._run_answer(bot, answer)
        return 200 <= status < 300

    def _run_answer(self, bot: Bot, answer: Any) -> None:
        """A method in the webhook's JSON answer is run, as the Bot API does."""
        mimetype = getattr(answer, "mimetype", None) or \
            (getattr(answer, "headers", {}) or {}).get("Content-Type", "").split(";")[0]
        if mimetype != "application/json":
            return
        try:
            body = answer.get_json() if hasattr(answer, "get_json") else answer.json()
        except Exception:
            return
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            params = {k: v for k, v in body.items() if k != "method"}
            try:
                api.call(self.world, bot, body["method"], params, self.base_url or "")
                self.world.requests.append((bot.username, body["method"], 200))
            except ApiError as exc:
                self.world.requests.append((bot.username, body["method"], exc.code))

    # -- serving --------------------------------------------------------------------
    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the API on host:port (0: a free port) in a thread; yields its base URL."""
        with serving(self.app, "telegram-emulator", host, port) as base:
            self.base_url = base
            try:
                yield base
            finally:
                self.base_url = None


def _answer(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


def create_app(emu: TelegramEmulator) -> Flask:
    app = Flask("telegram_emulator")
    world = emu.world

    @app.route("/bot<path:token>/<method>", methods=["GET", "POST"])
    def method_call(token: str, method: str):
        bot = world.bots.get(token)
        if bot is None:
            return _answer(ApiError(401, "Unauthorized").body(), 401)
        params: dict[str, Any] = dict(request.args)
        if request.is_json:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return _answer(ApiError(400, "Bad Request: can't parse JSON object").body(), 400)
            params.update(body)
        else:
            params.update(request.form.to_dict())
            params.update({k: json.loads(v) for k, v in params.items()
                           if k in ("reply_parameters", "allowed_updates") and isinstance(v, str)})
        try:
            result = api.call(world, bot, method, params, emu.base_url or "")
        except ApiError as exc:
            world.requests.append((bot.username, method, exc.code))
            return _answer(exc.body(), exc.code)
        world.requests.append((bot.username, method, 200))
        out: dict[str, Any] = {"ok": True, "result": result}
        if method == "setWebhook":
            out["description"] = "Webhook was set" if params.get("url") else "Webhook was deleted"
        elif method == "deleteWebhook":
            out["description"] = "Webhook was deleted"
        return _answer(out)

    @app.get("/file/bot<path:token>/<path:file_path>")
    def download(token: str, file_path: str):
        if token not in world.bots:
            return _answer(ApiError(401, "Unauthorized").body(), 401)
        f = next((f for f in world.files.values() if f.path == file_path), None)
        if f is None:
            return _answer(ApiError(404, "Not Found").body(), 404)
        return Response(f.data, mimetype=f.mime_type)

    return app
