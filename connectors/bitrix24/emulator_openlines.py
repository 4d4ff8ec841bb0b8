"""Open Lines in the emulated portal: imconnector.*, imopenlines.config.list.get, im chats.

Follows the REST docs (api-reference/imopenlines/imconnector/*, openlines/*,
chats/messages/im-message-add): imconnector methods only in an app's context (403
WRONG_AUTH_TYPE through an incoming webhook); register answers {"result": {"result":
true}} or, with HTTP 200, {"result": false, "error", "error_description"}; send.messages
answers {"SUCCESS", "DATA": {"RESULT": [one per message: user, message, chat, SUCCESS,
session {ID, CHAT_ID}]}}; an unregistered connector is IMCONNECTOR_NO_CORRECT_PROVIDER and
a line that does not exist, is inactive, or where the connector is not active is
NOT_ACTIVE_LINE; imopenlines.v2.Session.list lists the chats' sessions (TARIFF_RESTRICTION
when `reports` is off). An operator's reply (`operator_reply`) is queued as
ONIMCONNECTORMESSAGEADD for the bound handlers. The portal does not dedupe messages by
their external id (nothing in the docs says it does): sending one twice shows it twice.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any

from connectors.bitrix24.emulator_answers import Answer, ApiError

REPLY_PATH = "/openlines/reply"  # the page's reply form (hub demo)
APP_ONLY = ("WRONG_AUTH_TYPE", "Current authorization type is denied for this method Application context required")


@dataclass
class OpenLinesState:
    lines: dict[int, dict[str, Any]] = field(default_factory=lambda: {
        1: {"ID": "1", "LINE_NAME": "WhatsApp sales", "ACTIVE": "Y", "CRM": "Y"},
        2: {"ID": "2", "LINE_NAME": "Support", "ACTIVE": "Y", "CRM": "Y"},
        3: {"ID": "3", "LINE_NAME": "Old line", "ACTIVE": "N", "CRM": "N"},
    })
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: set[tuple[str, int]] = field(default_factory=set)
    errors: set[tuple[str, int]] = field(default_factory=set)  # imconnector.set.error
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # external user id -> user
    chats: dict[tuple[str, int, str], dict[str, Any]] = field(default_factory=dict)  # (connector, line, ext chat)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)  # im message id -> message
    reports: bool = True  # the plan has Open Channels reports (imopenlines.v2.Session.list)
    ids: dict[str, int] = field(default_factory=lambda: {"chat": 1800, "message": 86000, "session": 320,
                                                          "user": 580})

    def next(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def chat_by_id(self, chat_id: int) -> dict[str, Any] | None:
        return next((c for c in self.chats.values() if c["chat_id"] == chat_id), None)


def _app_only(p: Any) -> None:
    if getattr(p, "_auth_kind", "") != "oauth":
        raise ApiError(*APP_ONLY, 403)


def _arg(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value in (None, "", [], {}):
        raise ApiError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty")
    return value


def _line(p: Any, params: dict[str, Any]) -> int:
    raw = str(_arg(params, "LINE"))
    if not raw.isdigit():
        raise ApiError("ERROR_ARGUMENT", "Argument 'LINE' is null or empty")
    return int(raw)


def _flag(value: Any) -> bool:
    return value not in (False, 0, "0", "", "N", "n", "false", None)


def _items(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value or [])


def register(p: Any, params: dict[str, Any]) -> Any:
    _app_only(p)

    def refused(code: str, text: str) -> Any:
        return Answer({"result": False, "error": code, "error_description": text})

    cid = params.get("ID")
    if not isinstance(cid, str) or not cid.strip():
        return refused("CONNECTOR_ID_REQUIRED", "Connector ID is not specified")
    if "." in cid:
        return refused("APPLICATION_REGISTRATION_ERROR_POINT",
                       "Application registration error. Using a dot in the connector identifier is not allowed")
    if not isinstance(params.get("NAME"), str) or not params["NAME"].strip():
        return refused("NAME_REQUIRED", "Connector name is not specified")
    icon = params.get("ICON")
    image = icon.get("DATA_IMAGE") if isinstance(icon, dict) else None
    if not isinstance(image, str) or not image.startswith("data:image/svg+xml,"):
        return refused("ICON_REQUIRED", "Connector icon is not specified")
    handler = params.get("PLACEMENT_HANDLER")
    if not isinstance(handler, str) or not handler.startswith(("http://", "https://")):
        return refused("NO_PLACEMENT_HANDLER", "Failed to get embedding handler URL")
    p.ol.connectors[cid.lower()] = {"ID": cid.lower(), "NAME": params["NAME"], "ICON": icon,
                                    "PLACEMENT_HANDLER": handler,
                                    "NEED_SYSTEM_MESSAGES": _flag(params.get("NEED_SYSTEM_MESSAGES", True))}
    return Answer({"result": True})


def _connector(p: Any, params: dict[str, Any]) -> str:
    cid = str(_arg(params, "CONNECTOR")).lower()
    if cid not in p.ol.connectors:
        raise ApiError("IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector")
    return cid


def activate(p: Any, params: dict[str, Any]) -> Any:
    _app_only(p)
    cid = _connector(p, params)
    line = _line(p, params)
    if "ACTIVE" not in params:
        raise ApiError("ERROR_ARGUMENT", "Argument 'ACTIVE' is null or empty")
    if line not in p.ol.lines:
        raise ApiError("NOT_ACTIVE_LINE", "Line with such ID is inactive or does not exist")
    on = str(params.get("ACTIVE") or "") not in ("", "0", "N")
    (p.ol.active.add if on else p.ol.active.discard)((cid, line))
    return Answer(True)


def status(p: Any, params: dict[str, Any]) -> Any:
    _app_only(p)
    cid = str(_arg(params, "CONNECTOR")).lower()
    line = int(str(params.get("LINE") or 0)) if str(params.get("LINE") or 0).isdigit() else 0
    active = (cid, line) in p.ol.active and p.ol.lines.get(line, {}).get("ACTIVE") == "Y"
    error = (cid, line) in p.ol.errors
    return Answer({"LINE": line, "CONNECTOR": cid, "ERROR": error, "CONFIGURED": active,
                   "STATUS": active and not error})


def set_error(p: Any, params: dict[str, Any]) -> Any:
    _app_only(p)
    cid = _connector(p, params)
    p.ol.errors.add((cid, _line(p, params)))
    return Answer(True)


def _active_line(p: Any, params: dict[str, Any]) -> tuple[str, int]:
    cid = _connector(p, params)
    line = _line(p, params)
    if p.ol.lines.get(line, {}).get("ACTIVE") != "Y" or (cid, line) not in p.ol.active:
        raise ApiError("NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist")
    return cid, line


def send_messages(p: Any, params: dict[str, Any]) -> Any:
    _app_only(p)
    cid, line = _active_line(p, params)
    raw = _arg(params, "MESSAGES")
    if not isinstance(raw, (list, dict)):
        raise ApiError("ERROR_ARGUMENT", "The value of an argument 'MESSAGES' must be of type array")
    items = _items(raw)
    if not all(isinstance(m, dict) for m in items):
        raise ApiError("ERROR_ARGUMENT", "The MESSAGES parameter must be an array of messages (arrays)")
    if not all(isinstance(m.get(k), dict) for m in items for k in ("user", "message", "chat")):
        raise ApiError("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
    results = []
    for m in items:
        user, message, chat = m["user"], m["message"], m["chat"]
        files = [f for f in _items(message.get("files")) if isinstance(f, dict) and f.get("url")]
        problems = []
        if not str(user.get("id") or ""):
            problems.append("User ID is not specified")
        if not str(chat.get("id") or ""):
            problems.append("Chat ID is not specified")
        if not str(message.get("text") or "").strip() and not files:
            problems.append("The message has neither text nor files")
        if problems:
            results.append({"SUCCESS": False, "ERRORS": problems})
            continue
        ext_user = str(user["id"])
        known = p.ol.users.setdefault(ext_user, {"ID": str(p.ol.next("user"))})
        known.update({k: str(user[k]) for k in ("name", "last_name", "phone") if user.get(k)})
        key = (cid, line, str(chat["id"]))
        room = p.ol.chats.get(key)
        if room is None:
            room = p.ol.chats[key] = {"chat_id": p.ol.next("chat"), "session_id": p.ol.next("session"),
                                      "created": p.clock(),
                                      "connector": cid, "line": line, "external_id": str(chat["id"]),
                                      "name": str(chat.get("name") or ""), "user": ext_user, "messages": []}
        mid = p.ol.next("message")
        p.ol.messages[mid] = {"id": mid, "chat_id": room["chat_id"], "author_id": int(known["ID"]),
                              "author": "customer", "text": str(message.get("text") or ""),
                              "files": [str(f["url"]) for f in files], "date": str(message.get("date") or ""),
                              "params": {"CONNECTOR_MID": [str(message.get("id") or "")]}, "status": ""}
        room["messages"].append(mid)
        results.append({"user": known["ID"],
                        "message": {"id": str(message.get("id") or ""), "date": {},
                                    "text": str(message.get("text") or ""), "files": files},
                        "chat": {"id": str(chat["id"]), "name": room["name"]},
                        "SUCCESS": True,
                        "session": {"ID": str(room["session_id"]), "CHAT_ID": str(room["chat_id"])}})
    return Answer({"SUCCESS": all(r["SUCCESS"] for r in results), "DATA": {"RESULT": results}})


def _status(kind: str):
    def method(p: Any, params: dict[str, Any]) -> Any:
        _app_only(p)
        _active_line(p, params)
        items = _items(_arg(params, "MESSAGES"))
        for item in items:
            im = item.get("im") if isinstance(item, dict) else None
            if not isinstance(im, dict):
                raise ApiError("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
            message = p.ol.messages.get(int(str(im.get("message_id") or 0) or 0))
            if message is not None and str(message["chat_id"]) == str(im.get("chat_id")) \
                    and message["author"] == "operator":
                if kind == "delivered" or message["status"] != "":
                    message["status"] = kind
                message.setdefault("reported", []).append(kind)
        return Answer({"SUCCESS": True, "DATA": []})
    return method


def config_list(p: Any, params: dict[str, Any]) -> Any:
    query = params.get("PARAMS") if isinstance(params.get("PARAMS"), dict) else {}
    flt = query.get("filter") if isinstance(query.get("filter"), dict) else {}
    rows = [dict(r) for r in p.ol.lines.values() if all(str(r.get(k)) == str(v) for k, v in flt.items())]
    select = _items(query.get("select"))
    if select:
        rows = [{k: v for k, v in r.items() if k in select} for r in rows]
    offset = int(str(query.get("offset") or 0))
    limit = min(int(str(query.get("limit") or 50)), 200)
    return Answer(rows[offset:offset + limit])


def message_add(p: Any, params: dict[str, Any]) -> Any:
    """im.message.add into an open line chat ("chat<id>"); SYSTEM=Y for a system message."""
    dialog = str(params.get("DIALOG_ID") or "")
    if not dialog:
        raise ApiError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    room = p.ol.chat_by_id(int(dialog[4:])) if dialog.startswith("chat") and dialog[4:].isdigit() else None
    if room is None:
        raise ApiError("ACCESS_ERROR", "You do not have access to the specified dialog")
    text = str(params.get("MESSAGE") or "")
    if not text.strip():
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty")
    mid = p.ol.next("message")
    system = str(params.get("SYSTEM") or "N") == "Y"
    p.ol.messages[mid] = {"id": mid, "chat_id": room["chat_id"], "author_id": 0 if system else p.webhook_user,
                          "author": "system" if system else "app", "text": text, "files": [], "date": "",
                          "params": {}, "status": ""}
    room["messages"].append(mid)
    if system and p.ol.connectors.get(room["connector"], {}).get("NEED_SYSTEM_MESSAGES", True):
        # "Allows sending system messages to the channel" (imconnector.register)
        _queue_event(p, room, mid, {"user_id": 0, "text": text})
    return Answer(mid)


def dialog_messages(p: Any, params: dict[str, Any]) -> Any:
    """im.dialog.messages.get: the chat's latest messages (LIMIT, at most 50), newest first."""
    dialog = str(params.get("DIALOG_ID") or "")
    room = p.ol.chat_by_id(int(dialog[4:])) if dialog.startswith("chat") and dialog[4:].isdigit() else None
    if room is None:
        raise ApiError("ACCESS_ERROR", "You do not have access to the specified dialog")
    limit = min(int(str(params.get("LIMIT") or 20)), 50)
    rows = [p.ol.messages[m] for m in reversed(room["messages"])][:limit]
    return Answer({"chat_id": room["chat_id"], "messages": [
        {"id": m["id"], "chat_id": m["chat_id"], "author_id": m["author_id"], "date": m["date"],
         "text": m["text"], "params": m["params"]} for m in rows], "users": [], "files": []})


def dialog_get(p: Any, params: dict[str, Any]) -> Any:
    """imopenlines.dialog.get by CHAT_ID, DIALOG_ID or USER_CODE
    (<connector>|<line>|<external chat id>|<Bitrix24 user id>)."""
    room = None
    if str(params.get("CHAT_ID") or "").isdigit():
        room = p.ol.chat_by_id(int(params["CHAT_ID"]))
    elif str(params.get("DIALOG_ID") or "").startswith("chat") and str(params["DIALOG_ID"])[4:].isdigit():
        room = p.ol.chat_by_id(int(str(params["DIALOG_ID"])[4:]))
    elif params.get("USER_CODE"):
        parts = str(params["USER_CODE"]).split("|")
        if len(parts) == 4 and parts[1].isdigit():
            candidate = p.ol.chats.get((parts[0], int(parts[1]), parts[2]))
            if candidate and p.ol.users.get(candidate["user"], {}).get("ID") == parts[3]:
                room = candidate
    if room is None:
        raise ApiError("ACCESS_ERROR", "You do not have access to the specified dialog")
    user = p.ol.users[room["user"]]["ID"]
    code = f"{room['connector']}|{room['line']}|{room['external_id']}|{user}"
    return Answer({"id": room["chat_id"], "name": room["name"], "type": "lines", "entity_type": "LINES",
                   "entity_id": code, "dialog_id": f"chat{room['chat_id']}",
                   "message_count": len(room["messages"])})


def _iso_time(params: dict[str, Any], name: str) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("INVALID_FILTER", "Invalid filter value", 400) from None
    if when.tzinfo is None:
        raise ApiError("INVALID_FILTER", "Invalid filter value", 400)
    return when.timestamp()


def session_list(p: Any, params: dict[str, Any]) -> Any:
    """imopenlines.v2.Session.list (statistics): the sessions of the lines and sources
    asked for, created within the period, oldest or newest first; userCode is
    <connector>|<line>|<external chat id>|<user id> for a connector's chats."""
    if not p.ol.reports:
        raise ApiError("TARIFF_RESTRICTION", "Statistics reports are not available on the current tariff plan", 400)

    def listed(one: str, many: str) -> list[str] | None:
        values = params.get(many) if params.get(many) not in (None, "", []) else params.get(one)
        if values in (None, "", []):
            return None
        values = _items(values) if isinstance(values, (list, dict)) else [values]
        if len(values) > 1000:
            raise ApiError("INVALID_FILTER", "Invalid filter value", 400)
        return [str(v).lower() for v in values]

    lines, sources = listed("configId", "configIdList"), listed("source", "sourceList")
    start, end = _iso_time(params, "dateCreateFrom"), _iso_time(params, "dateCreateTo")
    if start is not None and end is not None:
        if end < start:
            raise ApiError("INVALID_FILTER", "Invalid filter value", 400)
        if end - start > 366 * 86400:
            raise ApiError("PERIOD_TOO_LARGE", "The requested period exceeds the maximum of 1 year", 400)
    offset = int(str(params.get("offset") or 0)) if str(params.get("offset") or 0).isdigit() else -1
    limit = int(str(params.get("limit") or 50)) if str(params.get("limit") or 50).isdigit() else 0
    if offset < 0 or not 1 <= limit <= 200:
        raise ApiError("INVALID_FILTER", "Invalid filter value", 400)
    if offset > 10000:
        raise ApiError("OFFSET_TOO_LARGE", "Offset is too large", 400)
    rows = [room for room in p.ol.chats.values()
            if (lines is None or str(room["line"]) in lines) and (sources is None or room["connector"] in sources)
            and (start is None or room["created"] >= start) and (end is None or room["created"] <= end)]
    rows.sort(key=lambda r: (r["created"], r["session_id"]),
              reverse=str(params.get("orderDirection") or "desc").lower() != "asc")
    page = rows[offset:offset + limit]

    def stamp(ts: float) -> str:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")

    return Answer({"sessions": [{
        "id": room["session_id"], "configId": room["line"], "source": room["connector"], "operatorId": None,
        "userId": int(p.ol.users[room["user"]]["ID"]),
        "userCode": f"{room['connector']}|{room['line']}|{room['external_id']}|{p.ol.users[room['user']]['ID']}",
        "chatId": room["chat_id"], "dateCreate": stamp(room["created"]), "dateClose": None,
        "dateFirstAnswer": None, "dateOperatorAnswer": None, "status": "new", "closeReason": None,
        "vote": "none", "voteHead": None, "commentHead": None, "crmEntityType": None, "crmEntityId": None,
        "queueTransfers": 0, "waitAnswer": None, "waitClose": None, "kpiFirstAnswer": None,
        "messageCount": len(room["messages"])} for room in page],
        "hasNextPage": offset + limit < len(rows)})


METHODS = {
    "imconnector.register": register,
    "imconnector.activate": activate,
    "imconnector.status": status,
    "imconnector.set.error": set_error,
    "imconnector.send.messages": send_messages,
    "imconnector.send.status.delivery": _status("delivered"),
    "imconnector.send.status.reading": _status("read"),
    "imopenlines.config.list.get": config_list,
    "im.message.add": message_add,
    "im.dialog.messages.get": dialog_messages,
    "imopenlines.dialog.get": dialog_get,
    "imopenlines.v2.session.list": session_list,
}


def operator_reply(p: Any, external_chat: str, text: str, *, user_id: int = 5, files: list[dict] | None = None,
                   connector: str | None = None) -> int:
    """An operator answers in the open line chat: the message, and ONIMCONNECTORMESSAGEADD
    queued for the bound handlers (dispatch_events sends it)."""
    with p.lock:
        room = next(c for c in p.ol.chats.values() if c["external_id"] == str(external_chat)
                    and (connector is None or c["connector"] == connector))
        user = next(u for u in p.users if u["ID"] == str(user_id))
        mid = p.ol.next("message")
        signed = f"[b]{user['NAME']} {user['LAST_NAME']}:[/b] [br]{text}"
        p.ol.messages[mid] = {"id": mid, "chat_id": room["chat_id"], "author_id": user_id, "author": "operator",
                              "text": signed, "files": [f.get("link", "") for f in files or []], "date": "",
                              "params": {}, "status": ""}
        room["messages"].append(mid)
        message: dict[str, Any] = {"user_id": user_id, "text": signed}
        if files:
            message["files"] = files
        _queue_event(p, room, mid, message)
        return mid


def _queue_event(p: Any, room: dict[str, Any], mid: int, message: dict[str, Any]) -> None:
    data = {"CONNECTOR": room["connector"], "LINE": room["line"], "MESSAGES": [
        {"im": {"chat_id": room["chat_id"], "message_id": mid}, "message": message,
         "chat": {"id": room["external_id"]}}]}
    for h in p.handlers:
        if h["event"] == "ONIMCONNECTORMESSAGEADD":
            p.outbox.append({"handler": h, "event": "ONIMCONNECTORMESSAGEADD", "id": mid,
                             "ts": int(p.clock()), "data": data})


def chats_page(p: Any) -> str:
    """The open line chats as a page (hub demo), each with a form an operator replies through."""
    with p.lock:
        parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Open Lines</title></head><body>",
                 "<h1>Open Lines chats</h1>"]
        if not p.ol.chats:
            parts.append("<p>No chats yet.</p>")
        for room in p.ol.chats.values():
            line = p.ol.lines.get(room["line"], {})
            parts.append(f"<section><h2>{html.escape(room['name'] or room['external_id'])} "
                         f"<small>chat {room['chat_id']}, line {html.escape(str(line.get('LINE_NAME', room['line'])))}"
                         f", connector {html.escape(room['connector'])}</small></h2><ul>")
            for mid in room["messages"]:
                m = p.ol.messages[mid]
                mark = f" [{m['status']}]" if m["status"] else ""
                files = "".join(f" <a href='{html.escape(u)}'>file</a>" for u in m["files"])
                parts.append(f"<li class='{m['author']}'><b>{m['author']}</b>: {html.escape(m['text'])}{files}"
                             f"{html.escape(mark)}</li>")
            parts.append(f"</ul><form method='post' action='{REPLY_PATH}'><input type='hidden' name='chat' "
                         f"value='{html.escape(room['external_id'])}'><input name='text' size='60' "
                         "placeholder='Reply as an operator'><button>Send</button></form></section>")
        parts.append("</body></html>")
        return "".join(parts)
