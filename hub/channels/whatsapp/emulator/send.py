"""Checks a send request the way Graph does, before any state is touched.

Codes follow Meta's table (spec §6.6): 100 for a body Graph cannot read (not JSON, wrong
JSON types, unexpected or misspelled keys, unknown enum values), 131008 for a required
parameter that is missing, 131009 for a value out of range, 132000/132012 for template
parameters that do not fit the stored template. Every error says which parameter.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hub.channels.whatsapp.emulator.errors import bad_value, invalid, missing

SEND_TYPES = ("text", "image", "audio", "video", "document", "sticker", "location",
              "contacts", "interactive", "template", "reaction")
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
MEDIA_KEYS = {
    "image": {"id", "link", "caption"},
    "video": {"id", "link", "caption"},
    "document": {"id", "link", "caption", "filename"},
    "audio": {"id", "link"},
    "sticker": {"id", "link"},
}
TOP_KEYS = {"messaging_product", "recipient_type", "to", "recipient", "type", "context",
            "biz_opaque_callback_data"}
READ_KEYS = {"messaging_product", "status", "message_id", "typing_indicator"}
INTERACTIVE_TYPES = ("button", "list", "cta_url", "flow", "product", "product_list",
                     "catalog_message", "location_request_message", "address_message")


@dataclass
class Outgoing:
    """A send request that passed the structural checks."""

    kind: str  # "message" | "read"
    body: dict[str, Any]
    type: str = ""
    to: str | None = None
    recipient: str | None = None  # BSUID target (2026+)
    payload: dict[str, Any] = field(default_factory=dict)  # the object named after `type`
    context_id: str | None = None
    biz_opaque: str | None = None
    message_id: str | None = None  # mark-as-read target
    typing: bool = False
    media_ids: list[str] = field(default_factory=list)  # uploaded media the message refers to


def as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Param {path} must be a JSON object.")
    return value


def _keys(obj: dict[str, Any], allowed: set[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise invalid(f'Unexpected key "{key}" on param "{path}".')


def string_param(obj: dict[str, Any], key: str, path: str, *, required: bool = True,
                 max_len: int | None = None, allow_empty: bool = False) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise missing(f"The parameter {path}['{key}'] is required.")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise invalid(f"Param {path}['{key}'] must be a string.")
    if not value and required and not allow_empty:
        raise missing(f"The parameter {path}['{key}'] is required.")
    if max_len is not None and len(value) > max_len:
        raise bad_value(f"Param {path}['{key}'] must be at most {max_len} characters long.")
    return value


def parse_send(raw: bytes) -> Outgoing:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid("The request body is not valid JSON.") from None
    body = as_object(body, "(root)")
    product = body.get("messaging_product")
    if product is None:
        raise invalid("The parameter messaging_product is required.")
    if product != "whatsapp":
        raise invalid(f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".')
    if "status" in body:
        return _parse_read(body)
    msg_type = body.get("type", "text")
    if msg_type not in SEND_TYPES:
        raise invalid(f"Param type must be one of {{{', '.join(t.upper() for t in SEND_TYPES)}}}"
                      f' - got "{msg_type}".')
    _keys(body, TOP_KEYS | {msg_type}, "(root)")
    rtype = body.get("recipient_type", "individual")
    if rtype != "individual":
        raise invalid(f'Param recipient_type must be one of {{INDIVIDUAL}} - got "{rtype}".')
    to = string_param(body, "to", "(root)", required=False)
    recipient = string_param(body, "recipient", "(root)", required=False)
    if not to and not recipient:
        raise missing("The parameter to is required.")
    out = Outgoing(kind="message", body=body, type=msg_type, to=to, recipient=recipient)
    if "context" in body:
        context = as_object(body["context"], "context")
        _keys(context, {"message_id"}, "context")
        out.context_id = string_param(context, "message_id", "context")
    out.biz_opaque = string_param(body, "biz_opaque_callback_data", "(root)", required=False, max_len=512)
    if msg_type not in body:
        raise missing(f"The parameter {msg_type} is required.")
    if msg_type == "contacts":  # the only type whose object is a list
        _contacts(body["contacts"])
        out.payload = {"contacts": body["contacts"]}
    else:
        out.payload = as_object(body[msg_type], msg_type)
        CHECKS[msg_type](out.payload, out)
    return out


def _parse_read(body: dict[str, Any]) -> Outgoing:
    _keys(body, READ_KEYS, "(root)")
    if body["status"] != "read":
        raise invalid(f'Param status must be one of {{READ}} - got "{body["status"]}".')
    out = Outgoing(kind="read", body=body)
    out.message_id = string_param(body, "message_id", "(root)")
    if "typing_indicator" in body:
        typing = as_object(body["typing_indicator"], "typing_indicator")
        _keys(typing, {"type"}, "typing_indicator")
        if typing.get("type") != "text":
            raise invalid('Param typing_indicator[\'type\'] must be one of {TEXT}.')
        out.typing = True
    return out


def _text(p: dict[str, Any], out: Outgoing) -> None:
    _keys(p, {"body", "preview_url"}, "text")
    string_param(p, "body", "text", max_len=4096)
    if "preview_url" in p and not isinstance(p["preview_url"], bool):
        raise invalid("Param text['preview_url'] must be a boolean.")


def media_ref(p: dict[str, Any], path: str, out: Outgoing) -> None:
    has_id, has_link = p.get("id") is not None, p.get("link") is not None
    if has_id == has_link:
        raise (bad_value if has_id else missing)(f"Param {path} must have exactly one of id or link.")
    if has_id:
        out.media_ids.append(str(string_param(p, "id", path)))
    else:
        link = string_param(p, "link", path) or ""
        if not link.startswith(("https://", "http://")):
            raise bad_value(f"Param {path}['link'] must be an http(s) URL.")


def _media(kind: str):
    def check(p: dict[str, Any], out: Outgoing) -> None:
        _keys(p, MEDIA_KEYS[kind], kind)
        media_ref(p, kind, out)
        string_param(p, "caption", kind, required=False, max_len=1024)
        string_param(p, "filename", kind, required=False, max_len=240)
    return check


def _number(p: dict[str, Any], key: str, path: str, low: float, high: float) -> None:
    if key not in p:
        raise missing(f"The parameter {path}['{key}'] is required.")
    value = p[key]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise bad_value(f"Param {path}['{key}'] must be a number.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_value(f"Param {path}['{key}'] must be a number between {low} and {high}.")


def _location(p: dict[str, Any], out: Outgoing) -> None:
    _keys(p, {"latitude", "longitude", "name", "address"}, "location")
    _number(p, "latitude", "location", -90, 90)
    _number(p, "longitude", "location", -180, 180)
    string_param(p, "name", "location", required=False, max_len=1000)
    string_param(p, "address", "location", required=False, max_len=1000)


def _contacts(contacts: Any) -> None:
    if not isinstance(contacts, list) or not contacts:
        raise missing("The parameter contacts must be a non-empty list.")
    for i, contact in enumerate(contacts):
        c = as_object(contact, f"contacts[{i}]")
        name = as_object(c.get("name"), f"contacts[{i}]['name']") if "name" in c else None
        if name is None:
            raise missing(f"The parameter contacts[{i}]['name'] is required.")
        string_param(name, "formatted_name", f"contacts[{i}]['name']")


def _reaction(p: dict[str, Any], out: Outgoing) -> None:
    _keys(p, {"message_id", "emoji"}, "reaction")
    string_param(p, "message_id", "reaction")
    emoji = string_param(p, "emoji", "reaction", required=False)
    if emoji and len(emoji) > 10:
        raise bad_value("Param reaction['emoji'] must be a single emoji.")


def _interactive(p: dict[str, Any], out: Outgoing) -> None:
    kind = string_param(p, "type", "interactive")
    if kind not in INTERACTIVE_TYPES:
        raise invalid(f"Param interactive['type'] must be one of "
                      f"{{{', '.join(t.upper() for t in INTERACTIVE_TYPES)}}} - got \"{kind}\".")
    _keys(p, {"type", "header", "body", "footer", "action"}, "interactive")
    if "footer" in p:
        string_param(as_object(p["footer"], "interactive['footer']"), "text", "interactive['footer']", max_len=60)
    if "action" not in p:
        raise missing("The parameter interactive['action'] is required.")
    action = as_object(p["action"], "interactive['action']")
    if kind == "button":
        _button_message(p, action, out)
    elif kind == "list":
        _list_message(p, action)
    elif "body" in p:
        string_param(as_object(p["body"], "interactive['body']"), "text", "interactive['body']", max_len=1024)


def _body(p: dict[str, Any], max_len: int) -> None:
    if "body" not in p:
        raise missing("The parameter interactive['body'] is required.")
    string_param(as_object(p["body"], "interactive['body']"), "text", "interactive['body']", max_len=max_len)


def _button_message(p: dict[str, Any], action: dict[str, Any], out: Outgoing) -> None:
    _body(p, 1024)
    if "header" in p:
        header = as_object(p["header"], "interactive['header']")
        htype = string_param(header, "type", "interactive['header']")
        if htype == "text":
            string_param(header, "text", "interactive['header']", max_len=60)
        elif htype in ("image", "video", "document"):
            media_ref(as_object(header.get(htype), f"interactive['header']['{htype}']"),
                      f"interactive['header']['{htype}']", out)
        else:
            raise invalid(f"Param interactive['header']['type'] must be one of "
                          f"{{TEXT, IMAGE, VIDEO, DOCUMENT}} - got \"{htype}\".")
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise missing("The parameter interactive['action']['buttons'] is required.")
    if len(buttons) > 3:
        raise bad_value("Param interactive['action']['buttons'] must have at most 3 buttons.")
    titles: set[str] = set()
    for i, button in enumerate(buttons):
        path = f"interactive['action']['buttons'][{i}]"
        b = as_object(button, path)
        if b.get("type") != "reply":
            raise invalid(f"Param {path}['type'] must be one of {{REPLY}}.")
        reply = as_object(b.get("reply"), f"{path}['reply']")
        string_param(reply, "id", f"{path}['reply']", max_len=256)
        title = string_param(reply, "title", f"{path}['reply']", max_len=20) or ""
        if title in titles:
            raise bad_value(f"Param {path}['reply']['title'] must be unique across buttons.")
        titles.add(title)


def _list_message(p: dict[str, Any], action: dict[str, Any]) -> None:
    _body(p, 4096)
    if "header" in p:
        header = as_object(p["header"], "interactive['header']")
        if header.get("type") != "text":
            raise invalid("Param interactive['header']['type'] must be one of {TEXT} for lists.")
        string_param(header, "text", "interactive['header']", max_len=60)
    string_param(action, "button", "interactive['action']", max_len=20)
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise missing("The parameter interactive['action']['sections'] is required.")
    if len(sections) > 10:
        raise bad_value("Param interactive['action']['sections'] must have at most 10 sections.")
    rows_total = 0
    for i, section in enumerate(sections):
        path = f"interactive['action']['sections'][{i}]"
        s = as_object(section, path)
        string_param(s, "title", path, required=len(sections) > 1, max_len=24)
        rows = s.get("rows")
        if not isinstance(rows, list) or not rows:
            raise missing(f"The parameter {path}['rows'] is required.")
        for j, row in enumerate(rows):
            r = as_object(row, f"{path}['rows'][{j}]")
            string_param(r, "id", f"{path}['rows'][{j}]", max_len=200)
            string_param(r, "title", f"{path}['rows'][{j}]", max_len=24)
            string_param(r, "description", f"{path}['rows'][{j}]", required=False, max_len=72)
        rows_total += len(rows)
    if rows_total > 10:
        raise bad_value("Param interactive['action']['sections'] must have at most 10 rows in total.")


def _template(p: dict[str, Any], out: Outgoing) -> None:
    _keys(p, {"name", "language", "components", "namespace"}, "template")
    string_param(p, "name", "template")
    if "language" not in p:
        raise missing("The parameter template['language'] is required.")
    language = as_object(p["language"], "template['language']")
    _keys(language, {"code", "policy"}, "template['language']")
    string_param(language, "code", "template['language']")
    if "components" in p and not isinstance(p["components"], list):
        raise invalid("Param template['components'] must be a list.")


CHECKS = {
    "text": _text, "location": _location, "reaction": _reaction, "interactive": _interactive,
    "template": _template, **{kind: _media(kind) for kind in MEDIA_TYPES},
}

