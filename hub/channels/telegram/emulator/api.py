"""The Bot API methods the emulator answers, with Telegram's bodies and error texts."""
from __future__ import annotations

from typing import Any

from hub.channels.telegram.emulator.state import (
    MAX_CAPTION, MAX_TEXT, SECRET_TOKEN, ApiError, Bot, Sent, World, now_unix,
)

MEDIA = {"sendPhoto": "photo", "sendDocument": "document", "sendVideo": "video", "sendAudio": "audio",
         "sendVoice": "voice", "sendSticker": "sticker"}


def call(world: World, bot: Bot, method: str, params: dict[str, Any], base_url: str) -> Any:
    error = world.injected(method)
    if error is not None:
        raise error
    if method == "getMe":
        return bot.me()
    if method == "setWebhook":
        return _set_webhook(bot, params)
    if method == "deleteWebhook":
        bot.webhook_url, bot.secret_token = "", None
        if params.get("drop_pending_updates"):
            bot.pending.clear()
        return True
    if method == "getWebhookInfo":
        info: dict[str, Any] = {"url": bot.webhook_url, "has_custom_certificate": False,
                                "pending_update_count": len(bot.pending)}
        if bot.webhook_url:
            info.update(max_connections=40, allowed_updates=bot.allowed_updates or ["message"])
        return info
    if method == "getFile":
        f = world.files.get(str(params.get("file_id") or ""))
        if f is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": len(f.data),
                "file_path": f.path}
    if method == "answerCallbackQuery":
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in world.callbacks:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        world.answered.append(query_id)
        return True
    if method in ("sendMessage", "sendLocation", "sendVenue") or method in MEDIA:
        return _send(world, bot, method, params)
    raise ApiError(404, "Not Found")


def _set_webhook(bot: Bot, params: dict[str, Any]) -> bool:
    url = params.get("url")
    if not isinstance(url, str):
        raise ApiError(400, "Bad Request: bad webhook: URL must be a string")
    secret = params.get("secret_token")
    if secret is not None and not SECRET_TOKEN.match(str(secret)):
        raise ApiError(400, "Bad Request: secret token contains unallowed characters")
    if url and not url.startswith(("https://", "http://")):
        raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    bot.webhook_url, bot.secret_token = url, secret if url else None
    bot.allowed_updates = list(params.get("allowed_updates") or [])
    return True


def _chat_id(world: World, bot: Bot, params: dict[str, Any]) -> int:
    raw = params.get("chat_id")
    try:
        chat_id = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "Bad Request: chat not found") from None
    if (bot.id, chat_id) in world.upgraded:
        raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                       migrate_to_chat_id=world.upgraded[(bot.id, chat_id)])
    group = world.groups.get((bot.id, chat_id))
    if group is not None:
        if (bot.id, chat_id) in world.blocked:
            raise ApiError(403, f"Forbidden: bot was kicked from the {group.type} chat")
        return chat_id
    if chat_id not in world.users or (bot.id, chat_id) not in world.chats:
        raise ApiError(400, "Bad Request: chat not found")
    if (bot.id, chat_id) in world.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat_id


def _send(world: World, bot: Bot, method: str, params: dict[str, Any]) -> dict[str, Any]:
    with world.lock:
        chat_id = _chat_id(world, bot, params)
        message: dict[str, Any] = {}
        if method == "sendMessage":
            text = params.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
            if len(text) > MAX_TEXT:
                raise ApiError(400, "Bad Request: message is too long")
            message["text"] = text
            markup = params.get("reply_markup")
            if markup is not None:
                rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
                if not isinstance(rows, list) or not all(
                        isinstance(row, list) and all(isinstance(b, dict) and b.get("text") and
                                                      len(str(b.get("callback_data", "")).encode()) <= 64
                                                      for b in row) for row in rows):
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button")
                message["reply_markup"] = markup
        elif method in MEDIA:
            field = MEDIA[method]
            message.update(_media(world, field, params.get(field)))
            caption = params.get("caption")
            if caption:
                if len(str(caption)) > MAX_CAPTION:
                    raise ApiError(400, "Bad Request: message caption is too long")
                message["caption"] = caption
        else:
            try:
                location = {"latitude": float(params["latitude"]), "longitude": float(params["longitude"])}
            except (KeyError, TypeError, ValueError):
                raise ApiError(400, "Bad Request: wrong latitude or longitude specified") from None
            message["location"] = location
            if method == "sendVenue":
                message["venue"] = {"location": location, "title": params.get("title"),
                                    "address": params.get("address")}
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            quoted = world.chats[(bot.id, chat_id)].get(reply.get("message_id"))
            if quoted is None and not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            if quoted is not None:
                message["reply_to_message"] = quoted
        wait = world.take(("chat", bot.id, chat_id), world.chat_rate, world.chat_burst) or \
            world.take(("bot", bot.id), world.bot_rate, world.bot_rate)
        if wait:
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        group = world.groups.get((bot.id, chat_id))
        chat = group.chat if group is not None else {"id": chat_id, "type": "private", **_names(world.users[chat_id])}
        out = {"message_id": world.next_message_id(bot, chat_id),
               "from": {"id": bot.id, "is_bot": True, "first_name": bot.first_name, "username": bot.username},
               "chat": chat, "date": now_unix(world.clock), **message}
        world.remember(bot, chat_id, out)
        world.sent.append(Sent(chat_id, method, dict(params), out))
        return out


def _media(world: World, field: str, source: Any) -> dict[str, Any]:
    if not isinstance(source, str) or not source:
        raise ApiError(400, f"Bad Request: there is no {field} in the request")
    f = world.files.get(source)
    if f is None:
        if not source.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        f = world.add_file(source.encode(), kind=field, mime_type="application/octet-stream", extension="bin")
    obj = {"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": len(f.data)}
    if field == "photo":
        return {"photo": [{**obj, "width": 800, "height": 600}]}
    return {field: {**obj, "mime_type": f.mime_type}}


def _names(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k in ("first_name", "last_name", "username") and v}
