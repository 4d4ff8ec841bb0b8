"""Meta's WhatsApp webhook body (Cloud API, or a 360dialog relay of it) -> ParsedWebhook.

Pure: no database, no clock. One POST may carry several entries (WABAs), each with
several changes, each with several messages and/or statuses; every level is walked and
the items come out in body order. Bodies that are not what Meta sends raise
hub.events.raw_webhooks.PayloadError naming the place and the fault, so a kept raw body says why it
failed and can be replayed once the parser is fixed. What Meta may add later (message
types, interactive kinds, change fields) never raises: unknown message types become
InboundMessage(type=<as sent>), unknown fields Unhandled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from hub.events.raw_webhooks import PayloadError

from hub.events import storable
from hub.channels.whatsapp.inbound.types import (
    InboundMessage,
    Item,
    Media,
    NumberEvent,
    ParsedWebhook,
    Pricing,
    Route,
    StatusUpdate,
    TemplateComponents,
    TemplateEvent,
    Unhandled,
    UserPreference,
    ValueErrors,
    WaContact,
    WaError,
)

WABA_OBJECT = "whatsapp_business_account"

# Column widths of what identifies a message or a user (hub.models): a longer value is
# not one Meta sends, and it could not be stored or matched, so its item is refused.
MAX_MESSAGE_ID = 255
MAX_WA_ID = 32
MAX_USER_ID = 160
MAX_STATUS = 16  # sent, delivered, read, played, failed, deleted, warning, ...
# Display values are cut to their column instead: the message itself is still good.
MAX_NAME = 256
MAX_USERNAME = 128


@dataclass
class _Sink:
    """What one parse collects besides its items: refused parts and repaired values."""

    notes: storable.Notes
    problems: list[str] = field(default_factory=list)

    def refuse(self, exc: PayloadError) -> None:
        self.problems.append(str(exc))

    def notes_under(self, where: str) -> tuple[str, ...]:
        prefix = where + "."
        return tuple(f"{place[len(prefix):]}: {what}" for place, what in self.notes.items()
                     if place.startswith(prefix))


def parse(body: bytes) -> ParsedWebhook:
    """Only the envelope (not JSON, not a WABA body, no entry list) fails the whole body;
    a bad entry, change, message or status is refused alone (ParsedWebhook.problems)."""
    doc, notes = _load(body)
    if "object" not in doc:
        raise PayloadError("body: `object` is missing (expected 'whatsapp_business_account')")
    if doc["object"] != WABA_OBJECT:
        raise PayloadError(
            f"body: `object` is {doc['object']!r}, not 'whatsapp_business_account'"
        )
    sink = _Sink(notes)
    items: list[Item] = []
    for i, entry in enumerate(_required_list(doc, "entry", "body")):
        try:
            items.extend(_entry(entry, f"entry[{i}]", sink))
        except PayloadError as exc:
            sink.refuse(exc)
    return ParsedWebhook(items=tuple(items), problems=tuple(sink.problems),
                         notes=tuple(f"{place}: {what}" for place, what in notes.items()))


# --- the envelope ---------------------------------------------------------------------


def _load(body: bytes) -> tuple[dict[str, Any], storable.Notes]:
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("parse() takes the raw request bytes")
    if not body.strip():
        raise PayloadError("body is empty")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    try:
        doc, notes = storable.load(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"body is a JSON {_kind(doc)}, not an object")
    return doc, notes


@dataclass(frozen=True)
class _Change:
    waba_id: str
    time: datetime | None  # entry.time
    field: str
    value: dict[str, Any]
    where: str  # "entry[0].changes[1].value"
    sink: _Sink


def _entry(entry: Any, where: str, sink: _Sink) -> list[Item]:
    entry = _object(entry, where)
    waba_id = _required_id(entry, "id", where)
    time = _optional_time(entry, "time", where)
    items: list[Item] = []
    for j, change in enumerate(_required_list(entry, "changes", where)):
        cwhere = f"{where}.changes[{j}]"
        try:
            change = _object(change, cwhere)
            field_name = _required_str(change, "field", cwhere)
            value = _object(_required(change, "value", cwhere), f"{cwhere}.value")
            c = _Change(waba_id, time, field_name, value, f"{cwhere}.value", sink)
            handler = _FIELDS.get(field_name, _unhandled)
            items.extend(handler(c))
        except PayloadError as exc:
            sink.refuse(exc)
    return items


def _metadata_route(c: _Change, *, required: bool) -> Route:
    """Route by value.metadata.phone_number_id (entry.id is the WABA, not the number)."""
    if "metadata" not in c.value:
        if required:
            raise PayloadError(f"{c.where}: `metadata` is missing (phone_number_id routes the change)")
        return Route(waba_id=c.waba_id, display_phone_number=_optional_str(c.value, "display_phone_number"))
    meta = _object(c.value["metadata"], f"{c.where}.metadata")
    return Route(
        waba_id=c.waba_id,
        phone_number_id=_required_id(meta, "phone_number_id", f"{c.where}.metadata"),
        display_phone_number=_optional_str(meta, "display_phone_number"),
    )


def _unhandled(c: _Change) -> list[Item]:
    return [Unhandled(route=_metadata_route(c, required=False), field=c.field, raw=c.value)]


# --- field = messages -------------------------------------------------------------------


def _messages_field(c: _Change) -> list[Item]:
    route = _metadata_route(c, required=True)
    contacts = _contacts(c.value, c.where)
    items: list[Item] = []
    for key in c.value:  # body order: messages/statuses/errors as Meta wrote them
        if key == "messages":
            for i, m in enumerate(_required_list(c.value, "messages", c.where)):
                where = f"{c.where}.messages[{i}]"
                try:
                    items.append(_message(m, route, contacts, where, c.sink.notes_under(where)))
                except PayloadError as exc:
                    c.sink.refuse(exc)
        elif key == "statuses":
            for i, s in enumerate(_required_list(c.value, "statuses", c.where)):
                try:
                    items.append(_status(s, route, contacts, f"{c.where}.statuses[{i}]"))
                except PayloadError as exc:
                    c.sink.refuse(exc)
        elif key == "errors":
            errors = _errors(c.value, c.where)
            if errors:
                items.append(ValueErrors(route=route, errors=errors))
    return items


def _contacts(value: dict[str, Any], where: str) -> list[WaContact]:
    out = []
    for i, raw in enumerate(_optional_list(value, "contacts", where)):
        cwhere = f"{where}.contacts[{i}]"
        raw = _object(raw, cwhere)
        profile = _object(raw.get("profile") or {}, f"{cwhere}.profile")
        username = _optional_str(profile, "username")
        out.append(
            WaContact(
                wa_id=_optional_str(raw, "wa_id"),
                user_id=_optional_str(raw, "user_id"),
                parent_user_id=_optional_str(raw, "parent_user_id"),
                name=(_optional_str(profile, "name") or "")[:MAX_NAME],
                username=username[:MAX_USERNAME] if username else None,
            )
        )
    return out


def _match_contact(
    contacts: list[WaContact], wa_id: str | None, user_id: str | None
) -> WaContact | None:
    """The contacts[] entry of this sender/recipient, by wa_id or BSUID (never by guess:
    a batch value can hold several users)."""
    for contact in contacts:
        if (wa_id and contact.wa_id == wa_id) or (user_id and contact.user_id == user_id):
            return contact
    return None


def _message(m: Any, route: Route, contacts: list[WaContact], where: str,
             parse_errors: tuple[str, ...] = ()) -> InboundMessage:
    m = _object(m, where)
    msg_id = _fitting(_required_str(m, "id", where), MAX_MESSAGE_ID, f"{where}.id")
    timestamp = _timestamp(_required(m, "timestamp", where), f"{where}.timestamp")
    mtype = _required_str(m, "type", where)
    content = _content(m, mtype, where)
    from_wa_id = _optional_str(m, "from")
    from_user_id = _optional_str(m, "from_user_id")
    contact = _match_contact(contacts, from_wa_id, from_user_id)
    if contact is not None:
        from_wa_id = from_wa_id or contact.wa_id
        from_user_id = from_user_id or contact.user_id
    if mtype == "system" and not (from_wa_id or from_user_id):
        # user_changed_user_id names nobody else: the sender is the user as the hub
        # knew them before the change (content["user_id"] is the new BSUID).
        from_user_id = _optional_str(content, "previous_user_id")
    if not (from_wa_id or from_user_id):
        raise PayloadError(f"{where}: no sender (neither `from` nor `from_user_id`)")
    _fitting(from_wa_id, MAX_WA_ID, f"{where}.from")
    _fitting(from_user_id, MAX_USER_ID, f"{where}.from_user_id")

    errors = _errors(m, where)
    renderer = _RENDERERS.get(mtype, _render_unknown)
    rendered = renderer(content, mtype, errors, where)
    context = _object(m.get("context") or {}, f"{where}.context")
    frequently = context.get("frequently_forwarded") is True
    referral = m.get("referral")
    reply_to = _optional_str(context, "id")
    if reply_to is not None and len(reply_to) > MAX_MESSAGE_ID:  # the message itself is fine
        parse_errors += (f"context.id: longer than {MAX_MESSAGE_ID} characters, not kept as the reply target",)
        reply_to = None
    return InboundMessage(
        route=route,
        id=msg_id,
        timestamp=timestamp,
        type=mtype,
        from_wa_id=from_wa_id,
        from_user_id=from_user_id,
        contact=contact,
        content=content,
        reply_to=reply_to,
        forwarded=context.get("forwarded") is True or frequently,  # >5 times is still forwarded
        frequently_forwarded=frequently,
        referred_product=_optional_object(context, "referred_product", f"{where}.context"),
        referral=_object(referral, f"{where}.referral") if referral is not None else None,
        errors=errors,
        raw=m,
        where=where,
        parse_errors=parse_errors,
        **rendered,
    )


def _content(m: dict[str, Any], mtype: str, where: str) -> dict[str, Any]:
    """The object named after the type. `contacts` is a list; it is kept under "contacts"."""
    raw = m.get(mtype)
    if mtype == "contacts":
        return {"contacts": _optional_list(m, "contacts", where)}
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        if mtype in _RENDERERS:
            raise PayloadError(f"{where}.{mtype}: expected an object, got a JSON {_kind(raw)}")
        return {"value": raw}  # a future type with a scalar payload: keep it, don't guess
    return raw


# Renderers: (content, type, errors, where) -> InboundMessage fields; always sets `text`,
# the readable rendering for timelines and CRMs.

Rendered = dict[str, Any]
Renderer = Callable[[dict[str, Any], str, tuple[WaError, ...], str], Rendered]


def _render_text(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    return {"text": _optional_str(content, "body") or ""}


_MEDIA_LABELS = {"image": "[image]", "video": "[video]", "audio": "[audio]",
                 "document": "[document]", "sticker": "[sticker]"}


def _render_media(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    if not content.get("id"):
        if errors:  # e.g. 131052: the user's file could not be fetched; no media id
            return {"text": _MEDIA_LABELS[mtype]}
        raise PayloadError(f"{where}.{mtype}: media without `id`")
    media = Media(
        id=_required_id(content, "id", f"{where}.{mtype}"),
        mime_type=_optional_str(content, "mime_type") or "",
        sha256=_optional_str(content, "sha256") or "",
        caption=_optional_str(content, "caption"),
        filename=_optional_str(content, "filename"),
        url=_optional_str(content, "url"),
        voice=content.get("voice") is True,
        animated=content.get("animated") is True,
    )
    if media.caption:
        text = media.caption
    elif mtype == "audio" and media.voice:
        text = "[voice message]"
    elif mtype == "document" and media.filename:
        text = f"📄 {media.filename}"
    else:
        text = _MEDIA_LABELS[mtype]
    return {"text": text, "media": media}


def _render_location(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    lat = _number(content, "latitude", f"{where}.location")
    lng = _number(content, "longitude", f"{where}.location")
    place = ", ".join(
        p for p in (_optional_str(content, "name"), _optional_str(content, "address")) if p
    )
    text = f"📍 {lat}, {lng}" + (f" — {place}" if place else "")
    return {"text": text}


def _render_contacts(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    cards = []
    for i, card in enumerate(content["contacts"]):
        card = _object(card, f"{where}.contacts[{i}]")
        name = _object(card.get("name") or {}, f"{where}.contacts[{i}].name")
        full = _optional_str(name, "formatted_name") or " ".join(
            p for p in (_optional_str(name, "first_name"), _optional_str(name, "last_name")) if p
        )
        cards.append("👤 " + ", ".join(p for p in (full, _first_phone(card)) if p))
    return {"text": "; ".join(cards)}


def _first_phone(card: dict[str, Any]) -> str | None:
    for phone in card.get("phones") or []:
        if isinstance(phone, dict) and (phone.get("phone") or phone.get("wa_id")):
            return _optional_str(phone, "phone") or _optional_str(phone, "wa_id")
    return None


def _render_interactive(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    kind = _required_str(content, "type", f"{where}.interactive")
    reply = _object(content.get(kind) or {}, f"{where}.interactive.{kind}")
    if kind == "button_reply":
        text = _optional_str(reply, "title") or ""
    elif kind == "list_reply":
        title, description = _optional_str(reply, "title"), _optional_str(reply, "description")
        text = " — ".join(p for p in (title, description) if p)
    elif kind == "nfm_reply":  # a completed WhatsApp Flow; response_json stays in content
        text = _optional_str(reply, "body") or _optional_str(reply, "name") or "[flow response]"
    else:
        text = f"[interactive: {kind}]"
    return {"text": text}


def _render_button(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    """A tap on a template QUICK_REPLY button (not an interactive reply)."""
    return {"text": _optional_str(content, "text") or _optional_str(content, "payload") or ""}


def _render_reaction(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    emoji = _optional_str(content, "emoji") or ""  # "" or missing: reaction removed
    return {
        "text": emoji,
        "reaction_to": _required_str(content, "message_id", f"{where}.reaction"),
        "reaction_emoji": emoji,
    }


def _render_order(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    lines, totals = [], {}
    for i, item in enumerate(_optional_list(content, "product_items", f"{where}.order")):
        item = _object(item, f"{where}.order.product_items[{i}]")
        sku = _optional_str(item, "product_retailer_id") or "?"
        qty = _decimal(item.get("quantity", 1))
        price = _decimal(item.get("item_price"))
        currency = _optional_str(item, "currency") or ""
        if price is None or qty is None:
            lines.append(f"{item.get('quantity', 1)} × {sku}")
            continue
        lines.append(f"{_plain(qty)} × {sku} @ {price:.2f} {currency}".rstrip())
        totals[currency] = totals.get(currency, Decimal(0)) + qty * price
    text = "🛒 Order: " + (", ".join(lines) or "no items")
    if len(totals) == 1:
        (currency, total), = totals.items()
        text += f"; total {total:.2f} {currency}".rstrip()
    note = _optional_str(content, "text")
    if note:
        text += f" — {note}"
    return {"text": text}


def _render_system(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    return {"text": _optional_str(content, "body") or f"[system: {content.get('type', '?')}]"}


def _render_unsupported(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    kind = _optional_str(content, "type")
    return {"text": f"[unsupported: {kind}]" if kind else "[unsupported]"}


def _render_revoke(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    return {
        "text": "[message deleted]",
        "original_message_id": _required_str(content, "original_message_id", f"{where}.revoke"),
    }


def _render_edit(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    """The new content, rendered like a message of its own type."""
    original = _required_str(content, "original_message_id", f"{where}.edit")
    inner = _object(_required(content, "message", f"{where}.edit"), f"{where}.edit.message")
    inner_type = _required_str(inner, "type", f"{where}.edit.message")
    inner_content = _content(inner, inner_type, f"{where}.edit.message")
    renderer = _RENDERERS.get(inner_type, _render_unknown)
    if renderer in (_render_edit, _render_revoke, _render_reaction):
        raise PayloadError(f"{where}.edit.message: a {inner_type} cannot be an edit's content")
    rendered = renderer(inner_content, inner_type, errors, f"{where}.edit.message")
    return {**rendered, "original_message_id": original}


def _render_request_welcome(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    return {"text": "[chat opened]"}


def _render_unknown(content: dict[str, Any], mtype: str, errors, where: str) -> Rendered:
    """A type this parser does not know yet: stored as unsupported, never raised."""
    return {"text": f"[unsupported: {mtype}]"}


_RENDERERS: dict[str, Renderer] = {
    "text": _render_text,
    "image": _render_media,
    "video": _render_media,
    "audio": _render_media,
    "document": _render_media,
    "sticker": _render_media,
    "location": _render_location,
    "contacts": _render_contacts,
    "interactive": _render_interactive,
    "button": _render_button,
    "reaction": _render_reaction,
    "order": _render_order,
    "system": _render_system,
    "unsupported": _render_unsupported,
    "revoke": _render_revoke,
    "edit": _render_edit,
    "request_welcome": _render_request_welcome,
}


# --- statuses, pricing, errors ----------------------------------------------------------


def _status(s: Any, route: Route, contacts: list[WaContact], where: str) -> StatusUpdate:
    s = _object(s, where)
    recipient_id = _optional_str(s, "recipient_id")
    recipient_user_id = _optional_str(s, "recipient_user_id")
    if recipient_user_id is None:
        contact = _match_contact(contacts, recipient_id, None)
        recipient_user_id = contact.user_id if contact else None
    pricing = s.get("pricing")
    return StatusUpdate(
        route=route,
        message_id=_fitting(_required_str(s, "id", where), MAX_MESSAGE_ID, f"{where}.id"),
        status=_fitting(_required_str(s, "status", where), MAX_STATUS, f"{where}.status").lower(),
        timestamp=_timestamp(_required(s, "timestamp", where), f"{where}.timestamp"),
        recipient_id=recipient_id,
        recipient_user_id=recipient_user_id,
        errors=_errors(s, where),
        pricing=_pricing(pricing, f"{where}.pricing") if pricing is not None else None,
        conversation=_optional_object(s, "conversation", where),
        biz_opaque_callback_data=_optional_str(s, "biz_opaque_callback_data"),
        raw=s,
        where=where,
    )


def _pricing(p: Any, where: str) -> Pricing:
    p = _object(p, where)
    billable = p.get("billable")
    if billable is not None and not isinstance(billable, bool):
        raise PayloadError(f"{where}.billable: expected true/false, got {billable!r}")
    model = _optional_str(p, "pricing_model")
    ptype = _optional_str(p, "type")
    return Pricing(
        billable=billable,
        pricing_model=model.upper() if model else None,
        type=ptype.lower() if ptype else None,
        category=normalise_category(_optional_str(p, "category")),
    )


def normalise_category(category: str | None) -> str | None:
    """Meta writes "authentication-international" in pricing and "..._international" in
    conversation.origin; libraries use either. One spelling: lower case, underscores."""
    return category.strip().lower().replace("-", "_") if category else None


def _errors(holder: dict[str, Any], where: str) -> tuple[WaError, ...]:
    return tuple(
        _error(e, f"{where}.errors[{i}]")
        for i, e in enumerate(_optional_list(holder, "errors", where))
    )


def _error(e: Any, where: str) -> WaError:
    e = _object(e, where)
    code = _required(e, "code", where)
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise PayloadError(f"{where}.code: expected an integer, got {code!r}")
    data = _object(e.get("error_data") or {}, f"{where}.error_data")
    message = _optional_str(e, "message") or ""
    return WaError(
        code=code,
        title=_optional_str(e, "title") or message,
        message=message,
        details=_optional_str(data, "details") or "",
        href=_optional_str(e, "href") or "",
    )


# --- field = user_preferences -----------------------------------------------------------


def _user_preferences_field(c: _Change) -> list[Item]:
    route = _metadata_route(c, required=False)
    contacts = _contacts(c.value, c.where)
    out: list[Item] = []
    for i, pref in enumerate(_required_list(c.value, "user_preferences", c.where)):
        pwhere = f"{c.where}.user_preferences[{i}]"
        pref = _object(pref, pwhere)
        wa_id, user_id = _optional_str(pref, "wa_id"), _optional_str(pref, "user_id")
        contact = _match_contact(contacts, wa_id, user_id)
        if contact is not None:
            wa_id, user_id = wa_id or contact.wa_id, user_id or contact.user_id
        if not (wa_id or user_id):
            raise PayloadError(f"{pwhere}: no user (neither `wa_id` nor `user_id`)")
        out.append(
            UserPreference(
                route=route,
                wa_id=wa_id,
                user_id=user_id,
                category=_required_str(pref, "category", pwhere),
                value=_required_str(pref, "value", pwhere).lower(),
                detail=_optional_str(pref, "detail") or "",
                timestamp=_optional_time(pref, "timestamp", pwhere),
            )
        )
    return out


# --- template fields --------------------------------------------------------------------


def _template(c: _Change, **fields: Any) -> TemplateEvent:
    return TemplateEvent(
        route=_metadata_route(c, required=False),
        field=c.field,
        template_id=_required_id(c.value, "message_template_id", c.where),
        name=_required_str(c.value, "message_template_name", c.where),
        language=_optional_str(c.value, "message_template_language") or "",
        time=c.time,
        raw=c.value,
        **fields,
    )


def _template_status_field(c: _Change) -> list[Item]:
    v = c.value
    return [
        _template(
            c,
            event=_required_str(v, "event", c.where).upper(),
            reason=_optional_str(v, "reason"),
            category=_optional_str(v, "message_template_category"),
            detail=_template_status_detail(v, c.where),
        )
    ]


def _template_status_detail(v: dict[str, Any], where: str) -> str | None:
    parts = []
    rejection = _optional_object(v, "rejection_info", where)
    if rejection:
        reason, advice = _optional_str(rejection, "reason"), _optional_str(rejection, "recommendation")
        parts.append(" ".join(p for p in (reason, f"Recommendation: {advice}" if advice else None) if p))
    other = _optional_object(v, "other_info", where)
    if other:
        title, description = _optional_str(other, "title"), _optional_str(other, "description")
        parts.append(": ".join(p for p in (title, description) if p))
    disable = _optional_object(v, "disable_info", where)
    if disable and disable.get("disable_date") is not None:
        date = _timestamp(disable["disable_date"], f"{where}.disable_info.disable_date")
        parts.append(f"disabled on {date.isoformat()}")
    return "; ".join(p for p in parts if p) or None


def _template_quality_field(c: _Change) -> list[Item]:
    v = c.value
    return [
        _template(
            c,
            quality_score=_required_str(v, "new_quality_score", c.where).upper(),
            previous_quality_score=_upper(_optional_str(v, "previous_quality_score")),
        )
    ]


def _template_category_field(c: _Change) -> list[Item]:
    """Two shapes. Notice (correct_category + category_update_timestamp): `new_category`
    is the CURRENT category and `correct_category` the one it becomes at that time.
    Completed change: previous_category -> new_category."""
    v = c.value
    new = _required_str(v, "new_category", c.where).upper()
    if "correct_category" in v:
        return [
            _template(
                c,
                category=_required_str(v, "correct_category", c.where).upper(),
                previous_category=new,
                effective_at=_optional_time(v, "category_update_timestamp", c.where),
            )
        ]
    return [
        _template(c, category=new, previous_category=_upper(_optional_str(v, "previous_category")))
    ]


def _template_components_field(c: _Change) -> list[Item]:
    v = c.value
    buttons = tuple(
        _object(b, f"{c.where}.message_template_buttons[{i}]")
        for i, b in enumerate(_optional_list(v, "message_template_buttons", c.where))
    )
    components = TemplateComponents(
        body=_optional_str(v, "message_template_element"),
        header=_optional_str(v, "message_template_title"),
        footer=_optional_str(v, "message_template_footer"),
        buttons=buttons,
    )
    return [_template(c, components=components)]


# --- number and account fields ----------------------------------------------------------


_LIMIT_NAMES = {-1: "TIER_UNLIMITED"}


def normalise_messaging_limit(value: Any, where: str = "messaging limit") -> str | None:
    """250 / "2000" / -1 / "TIER_2K" -> "TIER_250" / "TIER_2K" / "TIER_UNLIMITED" / "TIER_2K".
    Meta's examples mix integer and TIER_* forms for the same field."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{where}: {value!r} is not a messaging limit")
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.upper().startswith("TIER_"):
            return stripped.upper()
        try:
            value = int(stripped)
        except ValueError:
            raise PayloadError(f"{where}: {value!r} is neither an integer nor a TIER_* value") from None
    if not isinstance(value, int):
        raise PayloadError(f"{where}: {value!r} is neither an integer nor a TIER_* value")
    if value in _LIMIT_NAMES:
        return _LIMIT_NAMES[value]
    if value <= 0:
        raise PayloadError(f"{where}: {value!r} is not a messaging limit")
    return f"TIER_{value // 1000}K" if value % 1000 == 0 else f"TIER_{value}"


def _number_event(c: _Change, **fields: Any) -> NumberEvent:
    return NumberEvent(
        route=_metadata_route(c, required=False), field=c.field, time=c.time, raw=c.value, **fields
    )


def _phone_quality_field(c: _Change) -> list[Item]:
    """Current shape (THROUGHPUT_UPGRADE, ONBOARDING) and the pre-Oct-2025 one (FLAGGED,
    UNFLAGGED, UPGRADE, DOWNGRADE) with current_limit as the number's messaging limit."""
    v = c.value
    event = _upper(_optional_str(v, "event"))
    limit = v.get("max_daily_conversations_per_business")
    limit_key = "max_daily_conversations_per_business"
    if limit in (None, ""):
        limit, limit_key = v.get("current_limit"), "current_limit"
    return [
        _number_event(
            c,
            event=event,
            messaging_limit=normalise_messaging_limit(limit, f"{c.where}.{limit_key}"),
            previous_messaging_limit=normalise_messaging_limit(v.get("old_limit"), f"{c.where}.old_limit"),
            throughput_level="HIGH" if event == "THROUGHPUT_UPGRADE" else None,
            quality_rating=_upper(_optional_str(v, "quality_rating")),
        )
    ]


def _capability_field(c: _Change) -> list[Item]:
    v = c.value
    key = "max_daily_conversations_per_business"
    if v.get(key) in (None, ""):
        key = "max_daily_conversation_per_phone"  # v23-and-below spelling
    return [_number_event(c, messaging_limit=normalise_messaging_limit(v.get(key), f"{c.where}.{key}"))]


def _account_update_field(c: _Change) -> list[Item]:
    return [_number_event(c, event=_upper(_optional_str(c.value, "event")))]


def _name_update_field(c: _Change) -> list[Item]:
    return [_number_event(c, event=_upper(_optional_str(c.value, "decision")))]


def _account_alerts_field(c: _Change) -> list[Item]:
    info = _object(c.value.get("alert_info") or c.value, f"{c.where}.alert_info")
    return [_number_event(c, event=_upper(_optional_str(info, "alert_type")))]


_FIELDS: dict[str, Callable[[_Change], list[Item]]] = {
    "messages": _messages_field,
    "user_preferences": _user_preferences_field,
    "message_template_status_update": _template_status_field,
    "message_template_quality_update": _template_quality_field,
    "template_category_update": _template_category_field,
    "message_template_components_update": _template_components_field,
    "phone_number_quality_update": _phone_quality_field,
    "business_capability_update": _capability_field,
    "account_update": _account_update_field,
    "phone_number_name_update": _name_update_field,
    "account_alerts": _account_alerts_field,
}


# --- small readers that say where things went wrong -------------------------------------


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object, got a JSON {_kind(value)}")
    return value


def _required(holder: dict[str, Any], key: str, where: str) -> Any:
    if key not in holder or holder[key] is None:
        raise PayloadError(f"{where}: `{key}` is missing")
    return holder[key]


def _required_list(holder: dict[str, Any], key: str, where: str) -> list[Any]:
    value = _required(holder, key, where)
    if not isinstance(value, list):
        raise PayloadError(f"{where}: `{key}` is not a list (got a JSON {_kind(value)})")
    return value


def _optional_list(holder: dict[str, Any], key: str, where: str) -> list[Any]:
    if holder.get(key) is None:
        return []
    return _required_list(holder, key, where)


def _optional_object(holder: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = holder.get(key)
    return None if value is None else _object(value, f"{where}.{key}")


def _required_str(holder: dict[str, Any], key: str, where: str) -> str:
    value = _required(holder, key, where)
    if not isinstance(value, str):
        raise PayloadError(f"{where}: `{key}` is not a string (got a JSON {_kind(value)})")
    if not value.strip():
        raise PayloadError(f"{where}: `{key}` is empty")
    return value


def _required_id(holder: dict[str, Any], key: str, where: str) -> str:
    """Ids come as strings, or as integers in template events (message_template_id)."""
    value = _required(holder, key, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _required_str(holder, key, where)


def _optional_str(holder: dict[str, Any], key: str) -> str | None:
    value = holder.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _fitting(value: str | None, limit: int, where: str) -> str | None:
    """An identifier no longer than its column: a longer one is no id Meta sends."""
    if value is not None and len(value) > limit:
        raise PayloadError(f"{where}: longer than {limit} characters ({len(value)})")
    return value


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _number(holder: dict[str, Any], key: str, where: str) -> float | int:
    value = _required(holder, key, where)
    if isinstance(value, str):  # defensive: some relays stringify numbers
        try:
            value = float(value)
        except ValueError:
            raise PayloadError(f"{where}: `{key}` is not a number: {value!r}") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise PayloadError(f"{where}: `{key}` is not a number (got a JSON {_kind(value)})")
    return value


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _plain(d: Decimal) -> str:
    return str(d.quantize(Decimal(1))) if d == d.to_integral_value() else str(d)


def _timestamp(value: Any, where: str) -> datetime:
    """Unix seconds, as a string (messages, statuses) or an integer (entry.time)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise PayloadError(f"{where}: {value!r} is not a Unix timestamp in seconds")
    if seconds < 0:
        raise PayloadError(f"{where}: {value!r} is before 1970")
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"{where}: {value!r} is out of range for a Unix timestamp in seconds") from None


def _optional_time(holder: dict[str, Any], key: str, where: str) -> datetime | None:
    value = holder.get(key)
    return None if value is None else _timestamp(value, f"{where}.{key}")
