"""WhatsApp webhook parsing: one set of expectations per fixture in fixtures/whatsapp/,
bad bodies with their exact error messages, and the X-Hub-Signature-256 check."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from hub.channels.whatsapp.inbound.parse import normalise_category, normalise_messaging_limit, parse
from hub.channels.meta_signature import sign_meta, verify_meta_signature
from hub.channels.whatsapp.inbound.types import (
    InboundMessage,
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
from hub.events.raw_webhooks import PayloadError
from hub.shared.security import hmac_sha256_hex
from tests.support.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "whatsapp"
WABA, PNID, DISPLAY, USER = "1100000000000001", "2200000000000002", "15550001111", "15557654321"
BSUID = "US.13491208655302741918"
ROUTE = Route(waba_id=WABA, phone_number_id=PNID, display_phone_number=DISPLAY)
WABA_ONLY = Route(waba_id=WABA)
ANA = WaContact(wa_id=USER, user_id=BSUID, name="Ana Souza")
T = 1795000000  # 2026-11-18T11:06:40Z, the fixtures' base time
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def wamid(tag: str) -> str:
    """Inbound message ids in the fixtures."""
    return f"wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQzQUE{tag}AA=="


def out_wamid(tag: str) -> str:
    """Ids of messages the business sent."""
    return f"wamid.HBgLMTU1NTc2NTQzMjEVAgARGBI{tag}AA=="


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def only(parsed: ParsedWebhook, cls: type) -> Any:
    assert len(parsed.items) == 1, parsed.items
    assert isinstance(parsed.items[0], cls), parsed.items[0]
    return parsed.items[0]


def message(parsed: ParsedWebhook, tag: str, offset: int, type_: str, text: str) -> InboundMessage:
    """The one inbound message, with the fields every fixture message shares checked."""
    msg = only(parsed, InboundMessage)
    assert msg.route == ROUTE
    assert msg.id == wamid(tag)
    assert msg.timestamp == at(T + offset)
    assert msg.timestamp.tzinfo is timezone.utc
    assert msg.type == type_
    assert msg.text == text
    assert msg.raw["id"] == msg.id
    return msg


def from_ana(msg: InboundMessage) -> None:
    assert msg.from_wa_id == USER
    assert msg.from_user_id == BSUID  # from contacts[].user_id
    assert msg.contact == ANA


def plain(msg: InboundMessage) -> None:
    """No context, referral, reaction, media or errors."""
    assert msg.reply_to is None
    assert not msg.forwarded and not msg.frequently_forwarded
    assert msg.referred_product is None and msg.referral is None
    assert msg.reaction_to is None and msg.reaction_emoji is None
    assert msg.original_message_id is None
    assert msg.errors == ()


EXPECT: dict[str, Callable[[ParsedWebhook], None]] = {}


def expect(name: str):
    def register(fn: Callable[[ParsedWebhook], None]):
        assert name not in EXPECT, name
        EXPECT[name] = fn
        return fn

    return register


# --- inbound messages -------------------------------------------------------------------


@expect("text__plain")
def _(p):
    msg = message(p, "TXT1", 0, "text", "Olá! Is my order #1042 shipped?")  # \u00e1 decoded
    from_ana(msg)
    plain(msg)
    assert msg.media is None
    assert msg.content == {"body": "Olá! Is my order #1042 shipped?"}
    assert msg.opens_window


@expect("image__caption")
def _(p):
    msg = message(p, "IMG1", 1, "image", "Broken part — see the crack")
    from_ana(msg)
    plain(msg)
    assert msg.media == Media(
        id="1234567890123456",
        mime_type="image/jpeg",  # "image\/jpeg" on the wire
        sha256="gJH2Zl9tQm2Xv0vOxIY7mH1dR2aKq4fVhW3k8e1b0Cw=",
        caption="Broken part — see the crack",
        url="https://lookaside.fbsbx.com/whatsapp_business/attachments/"
        "?mid=1234567890123456&ext=1795000301&hash=ATu5k2yQ9bXn",
    )
    assert b"\\/" in raw("image__caption") and b"\\u2014" in raw("image__caption")


@expect("audio__voice")
def _(p):
    msg = message(p, "AUD1", 2, "audio", "[voice message]")
    from_ana(msg)
    plain(msg)
    assert msg.media == Media(
        id="2234567890123456",
        mime_type="audio/ogg; codecs=opus",
        sha256="m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=",
        voice=True,
    )
    assert msg.media.url is None  # older payloads: fetch the URL by id


@expect("video__plain")
def _(p):
    msg = message(p, "VID1", 3, "video", "[video]")
    plain(msg)
    assert msg.media.id == "3234567890123456"
    assert msg.media.mime_type == "video/mp4"
    assert msg.media.caption is None and not msg.media.voice and not msg.media.animated


@expect("document__filename")
def _(p):
    msg = message(p, "DOC1", 4, "document", "📄 Factura-2026-11.pdf")
    plain(msg)
    assert msg.media == Media(
        id="4234567890123456",
        mime_type="application/pdf",
        sha256="grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc=",
        filename="Factura-2026-11.pdf",
    )


@expect("sticker__animated")
def _(p):
    msg = message(p, "STK1", 5, "sticker", "[sticker]")
    plain(msg)
    assert msg.media.id == "5234567890123456"
    assert msg.media.mime_type == "image/webp"
    assert msg.media.animated is True and msg.media.voice is False


@expect("location__place")
def _(p):
    msg = message(
        p, "LOC1", 6, "location",
        "📍 52.520008, 13.404954 — Café Mitte, Rosenthaler Str. 1, 10119 Berlin",
    )
    plain(msg)
    assert msg.media is None
    assert msg.content["url"] == "https://maps.google.com/?cid=2000000000000000000"
    assert msg.content["latitude"] == 52.520008


@expect("location__bare")
def _(p):
    msg = message(p, "LOC2", 7, "location", "📍 -23.5505, -46.6333")
    plain(msg)
    assert msg.content == {"latitude": -23.5505, "longitude": -46.6333}


@expect("contacts__card")
def _(p):
    msg = message(p, "CON1", 8, "contacts", "👤 José Pérez, +34 612 34 56 78; 👤 Lena Koch")
    from_ana(msg)  # value.contacts is the sender; the message's contacts are the cards
    plain(msg)
    cards = msg.content["contacts"]
    assert len(cards) == 2
    assert cards[0]["phones"][0]["wa_id"] == "34612345678"
    assert cards[0]["org"] == {"company": "Acme"}


@expect("interactive__button_reply")
def _(p):
    msg = message(p, "BTN1", 9, "interactive", "Change address")
    from_ana(msg)
    assert msg.reply_to == out_wamid("OUT1")  # the message that carried the buttons
    assert msg.content["button_reply"]["id"] == "change-button"
    assert msg.opens_window


@expect("interactive__list_reply")
def _(p):
    msg = message(p, "LST1", 10, "interactive", "Priority Mail Express — Next Day to 2 Days")
    assert msg.reply_to == out_wamid("OUT2")
    assert msg.content["list_reply"]["id"] == "priority_express"


@expect("interactive__nfm_reply")
def _(p):
    msg = message(p, "NFM1", 11, "interactive", "Sent")
    assert msg.reply_to == out_wamid("OUT3")
    response = json.loads(msg.content["nfm_reply"]["response_json"])  # a JSON string inside
    assert response == {"flow_token": "lead-7781", "rating": "4", "comment": "Rápido"}


@expect("button__template_quick_reply")
def _(p):
    msg = message(p, "QRB1", 12, "button", "Accept")
    from_ana(msg)
    assert msg.reply_to == out_wamid("TPL1")  # the template message
    assert msg.content == {"payload": "accept_order_42", "text": "Accept"}
    assert msg.opens_window


@expect("button__template_no_context")
def _(p):
    msg = message(p, "QRB2", 13, "button", "Stop promotions")
    plain(msg)
    assert msg.content["payload"] == "STOP_PROMOS"


@expect("reaction__emoji")
def _(p):
    msg = message(p, "REA1", 14, "reaction", "👍")  # \ud83d\udc4d surrogate pair decoded
    from_ana(msg)
    assert msg.reaction_to == out_wamid("OUT4")
    assert msg.reaction_emoji == "👍"
    assert msg.reply_to is None
    assert not msg.opens_window


@expect("reaction__removed")
def _(p):
    msg = message(p, "REA2", 15, "reaction", "")
    assert msg.reaction_to == out_wamid("OUT4")
    assert msg.reaction_emoji == ""


@expect("reaction__removed_no_emoji")
def _(p):
    msg = message(p, "REA3", 16, "reaction", "")
    assert msg.reaction_to == out_wamid("OUT4")
    assert msg.reaction_emoji == ""  # missing emoji is a removal too


@expect("order__cart")
def _(p):
    msg = message(
        p, "ORD1", 17, "order",
        "🛒 Order: 2 × SKU-1 @ 19.90 EUR, 1 × SKU-7 @ 5.00 EUR; total 44.80 EUR — Gift wrap, please",
    )
    plain(msg)
    assert msg.content["catalog_id"] == "354160437058781"
    assert [i["product_retailer_id"] for i in msg.content["product_items"]] == ["SKU-1", "SKU-7"]
    assert msg.opens_window


@expect("system__user_changed_number")
def _(p):
    msg = message(p, "SYS1", 18, "system", "User Ana Souza changed from 15557654321 to 15559990000")
    assert msg.from_wa_id == USER  # the old number: how the hub knows this user
    assert msg.from_user_id is None
    assert msg.contact is None  # system messages carry no contacts[]
    assert msg.content["wa_id"] == "15559990000"
    assert msg.content["type"] == "user_changed_number"
    assert not msg.opens_window


@expect("system__customer_changed_number")
def _(p):
    """The older webhook versions' name for user_changed_number: the same change."""
    msg = message(p, "SYS3", 18, "system", "User Ana Souza changed from 15557654321 to 15559990000")
    assert msg.from_wa_id == USER
    assert msg.content == {"body": "User Ana Souza changed from 15557654321 to 15559990000",
                           "wa_id": "15559990000", "type": "customer_changed_number"}
    assert not msg.opens_window


@expect("system__user_changed_user_id")
def _(p):
    msg = message(
        p, "SYS2", 19, "system",
        "User changed from US.13491208655302741918 to US.20011930447718203344",
    )
    assert msg.from_wa_id is None
    assert msg.from_user_id == BSUID  # previous_user_id: the sender as the hub knew them
    assert msg.content["user_id"] == "US.20011930447718203344"


@expect("unsupported__poll")
def _(p):
    msg = message(p, "UNS1", 20, "unsupported", "[unsupported: poll]")
    from_ana(msg)
    assert msg.errors == (
        WaError(
            code=131051,
            title="Message type unknown",
            message="Message type unknown",
            details="Message type is currently not supported.",
        ),
    )
    assert not msg.opens_window


@expect("event_rsvp__unknown_future_type")
def _(p):
    msg = message(p, "FUT1", 21, "event_rsvp", "[unsupported: event_rsvp]")
    from_ana(msg)
    plain(msg)
    assert msg.content == {"event_id": "evt_88", "response": "going"}
    assert not msg.opens_window


@expect("revoke__deleted")
def _(p):
    msg = message(p, "REV1", 22, "revoke", "[message deleted]")
    assert msg.original_message_id == wamid("TXT1")
    assert msg.reply_to is None
    assert not msg.opens_window


@expect("edit__text")
def _(p):
    msg = message(p, "EDT1", 23, "edit", "Olá! Is my order #1043 shipped?")
    assert msg.original_message_id == wamid("TXT1")
    assert msg.content["message"]["type"] == "text"
    assert msg.media is None


@expect("text__reply_context")
def _(p):
    msg = message(p, "RPL1", 24, "text", "Yes, Tuesday works")
    assert msg.reply_to == out_wamid("OUT5")
    assert not msg.forwarded


@expect("text__forwarded")
def _(p):
    msg = message(p, "FWD1", 25, "text", "Look at this offer")
    assert msg.forwarded is True and msg.frequently_forwarded is False
    assert msg.reply_to is None


@expect("image__frequently_forwarded")
def _(p):
    msg = message(p, "FWD2", 26, "image", "[image]")
    assert msg.forwarded is True and msg.frequently_forwarded is True
    assert msg.media.id == "6234567890123456"


@expect("text__referred_product")
def _(p):
    msg = message(p, "PRD1", 27, "text", "Is this available in blue?")
    assert msg.reply_to == out_wamid("OUT6")
    assert msg.referred_product == {"catalog_id": "354160437058781", "product_retailer_id": "SKU-1"}
    assert msg.referral is None


@expect("text__referral_image_ad")
def _(p):
    msg = message(p, "ADS1", 28, "text", "Can I get more info about this?")
    ref = msg.referral
    assert ref["source_url"] == "https://fb.me/3cr4Wqqkv"  # "https:\/\/fb.me\/..." on the wire
    assert ref["source_id"] == "120226305854810726"
    assert ref["source_type"] == "ad"
    assert ref["media_type"] == "image"
    assert ref["headline"] == "Summer sale ☀️"
    assert ref["image_url"].startswith("https://scontent.xx.fbcdn.net/v/t45.1600-4/")
    assert ref["ctwa_clid"].startswith("Aff-n8ZTODiE79d22K")
    assert ref["welcome_message"] == {"text": "Hi there! How can we help?"}
    assert msg.reply_to is None


@expect("image__referral_video_ad")
def _(p):
    msg = message(p, "ADS2", 29, "image", "[image]")  # any content type can carry a referral
    ref = msg.referral
    assert ref["media_type"] == "video"
    assert ref["video_url"] == "https://video.xx.fbcdn.net/v/t42.1790-2/1066_n.mp4?_nc_cat=104"
    assert ref["thumbnail_url"].endswith("1066_n.jpg?_nc_cat=111")
    assert "image_url" not in ref
    assert ref["ctwa_clid"].startswith("ARAkLkA8")


@expect("text__referral_status_ad")
def _(p):
    msg = message(p, "ADS3", 30, "text", "Hi! I saw your status")
    assert msg.referral["source_id"] == "120226305854811111"
    assert "ctwa_clid" not in msg.referral  # ads shown in Status carry no click id


@expect("text__username_bsuid")
def _(p):
    msg = message(p, "USR1", 31, "text", "oi, vi o anúncio")
    assert msg.from_wa_id is None  # the phone number is withheld
    assert msg.from_user_id == "BR.1502576394655843"
    assert msg.contact == WaContact(
        wa_id=None,
        user_id="BR.1502576394655843",
        parent_user_id="BR.ENT.11815799212886844830",
        name="João",
        username="joao.silva",
    )


@expect("text__dialog360")
def _(p):
    msg = only(p, InboundMessage)
    assert msg.route == Route("1100000000000360", "2200000000000360", "4930123456789")
    assert msg.id == "wamid.HBgNNDkxNzAxMjM0NTY3FQIAEhgUM0FBMzYwRElBTE9HVEVTVDAxAA=="
    assert msg.timestamp == at(T + 32)
    assert msg.from_wa_id == "491701234567" and msg.from_user_id is None
    assert msg.contact == WaContact(wa_id="491701234567", name="Müller")
    assert msg.text == "Guten Tag, ist das noch verfügbar?"


# --- statuses ---------------------------------------------------------------------------

MARKETING = Pricing(billable=True, pricing_model="PMP", type="regular", category="marketing")


@expect("status__sent_pmp")
def _(p):
    st = only(p, StatusUpdate)
    assert st.route == ROUTE
    assert st.message_id == out_wamid("S001")
    assert st.status == "sent"
    assert st.timestamp == at(T + 100)
    assert st.recipient_id == USER and st.recipient_user_id == BSUID
    assert st.biz_opaque_callback_data == "crm-msg-8812"
    assert st.pricing == MARKETING
    assert st.conversation is None  # v24+: only inside a free entry point window
    assert st.errors == ()


@expect("status__delivered")
def _(p):
    st = only(p, StatusUpdate)
    assert (st.message_id, st.status, st.timestamp) == (out_wamid("S001"), "delivered", at(T + 104))
    assert st.pricing == MARKETING
    assert st.recipient_user_id == BSUID  # from the matching contacts[] entry


@expect("status__read")
def _(p):
    st = only(p, StatusUpdate)
    assert (st.message_id, st.status, st.timestamp) == (out_wamid("S001"), "read", at(T + 160))
    assert st.pricing is None and st.errors == () and st.biz_opaque_callback_data is None


@expect("status__played")
def _(p):
    st = only(p, StatusUpdate)
    assert (st.message_id, st.status, st.timestamp) == (out_wamid("S002"), "played", at(T + 200))


@expect("status__failed_131047")
def _(p):
    st = only(p, StatusUpdate)
    assert (st.message_id, st.status, st.timestamp) == (out_wamid("S003"), "failed", at(T + 210))
    assert st.recipient_id == USER
    assert st.recipient_user_id is None  # failed statuses carry no contacts[]
    assert st.errors == (
        WaError(
            code=131047,
            title="Re-engagement message",
            message="Re-engagement message",
            details="More than 24 hours have passed since the recipient last replied to the sender number.",
            href=ERROR_HREF,  # "https:\/\/..." on the wire
        ),
    )
    assert st.pricing is None


@expect("status__failed_131026")
def _(p):
    st = only(p, StatusUpdate)
    assert st.status == "failed" and st.recipient_id == "15550009999"
    assert [(e.code, e.title, e.details) for e in st.errors] == [
        (131026, "Message undeliverable", "Message Undeliverable.")
    ]


@expect("status__fep_referral_conversion")
def _(p):
    st = only(p, StatusUpdate)
    assert st.status == "sent" and st.timestamp == at(T + 230)
    assert st.pricing == Pricing(
        billable=False, pricing_model="PMP", type="free_entry_point", category="referral_conversion"
    )
    assert st.conversation == {
        "id": "8f842dbba350821654c9dfed31f5635c",
        "expiration_timestamp": str(T + 230 + 72 * 3600),
        "origin": {"type": "referral_conversion"},
    }


@expect("status__cbp_legacy")
def _(p):
    st = only(p, StatusUpdate)
    assert st.timestamp == at(1748000000)  # 2025-05-23, before per-message pricing
    assert st.pricing == Pricing(billable=True, pricing_model="CBP", type=None, category="utility")
    assert st.conversation["origin"] == {"type": "utility"}
    assert st.recipient_user_id is None  # pre-BSUID contact


@expect("status__auth_international")
def _(p):
    st = only(p, StatusUpdate)
    assert st.recipient_id == "919812345678"
    assert st.pricing.category == "authentication_international"  # hyphen normalised
    assert st.raw["pricing"]["category"] == "authentication-international"  # raw kept as sent


@expect("messages__batch")
def _(p):
    second = Route("1100000000000009", "2200000000000008", "15550002222")
    kinds = [(type(i).__name__, i.route.waba_id) for i in p.items]
    assert kinds == [
        ("InboundMessage", WABA), ("InboundMessage", WABA), ("InboundMessage", WABA),
        ("StatusUpdate", WABA), ("StatusUpdate", WABA),
        ("InboundMessage", "1100000000000009"), ("StatusUpdate", "1100000000000009"),
    ]
    first, other, reaction, delivered, read, chen, sent = p.items
    assert (first.id, first.text, first.from_wa_id) == (wamid("BAT1"), "first", USER)
    assert first.contact.name == "Ana Souza"
    assert (other.id, other.text, other.from_wa_id) == (wamid("BAT2"), "second", "15551112222")
    assert other.contact.name == "Bruno"  # each message gets its own sender's contact
    assert (reaction.reaction_to, reaction.reaction_emoji) == (wamid("BAT2"), "❤️")
    assert reaction.contact.name == "Ana Souza"
    assert [(s.message_id, s.status) for s in (delivered, read)] == [
        (out_wamid("B001"), "delivered"), (out_wamid("B001"), "read")
    ]
    assert delivered.route == ROUTE
    assert chen.route == second and sent.route == second
    assert (chen.text, chen.from_wa_id, chen.timestamp) == ("你好", "8613800138000", at(T + 305))
    assert sent.pricing == Pricing(False, "PMP", "free_customer_service", "service")
    assert len(p.of(InboundMessage)) == 4 and len(p.of(StatusUpdate)) == 3


@expect("errors__130429")
def _(p):
    item = only(p, ValueErrors)
    assert item.route == ROUTE
    assert item.errors == (
        WaError(
            code=130429,
            title="Rate limit hit",
            message="Rate limit hit",
            details="Cloud API message throughput has been reached.",
            href=ERROR_HREF,
        ),
    )


# --- templates --------------------------------------------------------------------------


@expect("message_template_status_update__approved")
def _(p):
    ev = only(p, TemplateEvent)
    assert ev.route == WABA_ONLY
    assert ev.field == "message_template_status_update"
    assert (ev.template_id, ev.name, ev.language) == ("1689556908129835", "order_shipped", "pt_BR")
    assert (ev.event, ev.reason, ev.category) == ("APPROVED", "NONE", "UTILITY")
    assert ev.detail is None
    assert ev.time == at(T + 1000)


@expect("message_template_status_update__rejected")
def _(p):
    ev = only(p, TemplateEvent)
    assert (ev.template_id, ev.name, ev.language) == ("1689556908129836", "abandoned_cart", "en")
    assert (ev.event, ev.reason, ev.category) == ("REJECTED", "INVALID_FORMAT", "MARKETING")
    assert ev.detail == (
        "Parameters placed next to each other without text between them. "
        "Recommendation: Separate parameters with descriptive text."
    )
    assert ev.time == at(T + 1001)


@expect("message_template_status_update__paused")
def _(p):
    ev = only(p, TemplateEvent)
    assert (ev.event, ev.reason, ev.name) == ("PAUSED", "NONE", "spring_promo")
    assert ev.detail == (
        "FIRST_PAUSE: Your WhatsApp message template has been paused for 3 hours "
        "until 2026-11-19 13:00 UTC because of low quality."
    )


@expect("message_template_quality_update__green_to_yellow")
def _(p):
    ev = only(p, TemplateEvent)
    assert ev.field == "message_template_quality_update"
    assert (ev.template_id, ev.name, ev.language) == ("806312974732579", "spring_promo", "en_US")
    assert (ev.previous_quality_score, ev.quality_score) == ("GREEN", "YELLOW")
    assert ev.event is None and ev.category is None
    assert ev.time == at(T + 1003)


@expect("template_category_update__notice")
def _(p):
    ev = only(p, TemplateEvent)
    assert ev.field == "template_category_update"
    assert ev.template_id == "278077987957091"
    # the trap: new_category is the CURRENT one; correct_category takes over later
    assert (ev.previous_category, ev.category) == ("UTILITY", "MARKETING")
    assert ev.effective_at == at(T + 1004 + 86400)
    assert ev.time == at(T + 1004)


@expect("template_category_update__changed")
def _(p):
    ev = only(p, TemplateEvent)
    assert (ev.previous_category, ev.category) == ("UTILITY", "MARKETING")
    assert ev.effective_at is None  # already done
    assert ev.time == at(T + 1005 + 86400)


@expect("message_template_components_update__edited")
def _(p):
    ev = only(p, TemplateEvent)
    assert ev.field == "message_template_components_update"
    assert (ev.template_id, ev.name, ev.language) == ("12345678", "order_shipped", "pt_BR")
    assert ev.components == TemplateComponents(
        body="Olá {{1}}, seu pedido {{2}} foi enviado!",
        header="Pedido enviado",
        footer="Loja Exemplo",
        buttons=(
            {
                "message_template_button_type": "URL",
                "message_template_button_text": "Rastrear",
                "message_template_button_url": "https://loja.example/rastreio/{{1}}",
            },
        ),
    )


# --- number and account events ----------------------------------------------------------


@expect("phone_number_quality_update__throughput")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.route == Route(waba_id=WABA, display_phone_number=DISPLAY)
    assert ev.field == "phone_number_quality_update"
    assert ev.event == "THROUGHPUT_UPGRADE"
    assert ev.messaging_limit == "TIER_UNLIMITED"
    assert ev.previous_messaging_limit is None
    assert ev.throughput_level == "HIGH"
    assert ev.time == at(T + 2000)


@expect("phone_number_quality_update__flagged")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.route.display_phone_number == DISPLAY
    assert (ev.event, ev.messaging_limit) == ("FLAGGED", "TIER_1K")  # historical shape
    assert ev.throughput_level is None
    assert ev.time == at(1727000000)


@expect("business_capability_update__tier")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.route == WABA_ONLY
    assert ev.field == "business_capability_update"
    assert ev.messaging_limit == "TIER_2K"
    assert ev.raw["max_phone_numbers_per_waba"] == 25
    assert ev.event is None


@expect("business_capability_update__int")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.messaging_limit == "TIER_10K"  # integer 10000 normalised
    assert ev.time == at(T + 2002)


@expect("business_capability_update__unlimited")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.messaging_limit == "TIER_UNLIMITED"  # -1 in the old per-phone field


@expect("account_update__restriction")
def _(p):
    ev = only(p, NumberEvent)
    assert ev.field == "account_update"
    assert ev.event == "ACCOUNT_RESTRICTION"
    assert ev.raw["restriction_info"] == [
        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": T + 2004 + 7 * 86400}
    ]
    assert ev.messaging_limit is None


@expect("user_preferences__stop")
def _(p):
    pref = only(p, UserPreference)
    assert pref == UserPreference(
        route=ROUTE,
        wa_id=USER,
        user_id=BSUID,  # from the matching contacts[] entry
        category="marketing_messages",
        value="stop",
        detail="User requested to stop marketing messages",
        timestamp=at(T + 2005),
    )


@expect("user_preferences__resume")
def _(p):
    pref = only(p, UserPreference)
    assert (pref.wa_id, pref.user_id, pref.value) == (USER, None, "resume")
    assert pref.timestamp == at(T + 2006)


@expect("security__unhandled")
def _(p):
    item = only(p, Unhandled)
    assert item.field == "security"
    assert item.route == Route(waba_id=WABA, display_phone_number=DISPLAY)
    assert item.raw["event"] == "PIN_CHANGED"


# --- the fixtures, one by one -----------------------------------------------------------

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.stem)
def test_fixture(path: Path):
    assert path.stem in EXPECT, f"fixture {path.name} has no expectations: add them to EXPECT"
    EXPECT[path.stem](parse(path.read_bytes()))


def test_every_expectation_has_its_fixture():
    assert len(FIXTURE_FILES) >= 60
    assert sorted(EXPECT) == [p.stem for p in FIXTURE_FILES]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.stem)
def test_fixtures_are_escaped_like_meta_sends(path: Path):
    body = path.read_bytes()
    assert body.isascii()  # non-ASCII travels as \uXXXX
    assert json.loads(body)["object"] == "whatsapp_business_account"


# --- defensive forms --------------------------------------------------------------------


def edited(name: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(raw(name))
    change(doc)
    return json.dumps(doc).encode()


def first_value(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]


def test_integer_message_and_status_timestamps_are_accepted():
    body = edited("text__plain", lambda d: first_value(d)["messages"][0].update(timestamp=T))
    assert parse(body).items[0].timestamp == at(T)
    body = edited("status__read", lambda d: first_value(d)["statuses"][0].update(timestamp=T + 160))
    assert parse(body).items[0].timestamp == at(T + 160)


def test_string_entry_time_is_accepted():
    body = edited("message_template_status_update__approved", lambda d: d["entry"][0].update(time=str(T + 1000)))
    assert parse(body).items[0].time == at(T + 1000)


def test_media_without_id_is_accepted_when_meta_says_why():
    def no_media(d):
        msg = first_value(d)["messages"][0]
        msg["image"] = {}
        msg["errors"] = [{"code": 131052, "title": "Media download error", "message": "Media download error"}]

    msg = parse(edited("image__caption", no_media)).items[0]
    assert (msg.type, msg.text, msg.media) == ("image", "[image]", None)
    assert [e.code for e in msg.errors] == [131052]


def test_unknown_interactive_kind_is_rendered_not_raised():
    def call_permission(d):
        first_value(d)["messages"][0]["interactive"] = {
            "type": "call_permission_reply", "call_permission_reply": {"response": "accept"}
        }

    msg = parse(edited("interactive__button_reply", call_permission)).items[0]
    assert msg.text == "[interactive: call_permission_reply]"


def test_contacts_are_matched_by_identity_not_position():
    def stranger(d):
        first_value(d)["contacts"] = [{"profile": {"name": "Someone Else"}, "wa_id": "15550000000"}]

    msg = parse(edited("text__plain", stranger)).items[0]
    assert msg.contact is None
    assert (msg.from_wa_id, msg.from_user_id) == (USER, None)


def test_string_error_codes_are_read_as_integers():
    def stringly(d):
        first_value(d)["statuses"][0]["errors"][0]["code"] = "131026"

    body = edited("status__failed_131026", stringly)
    assert parse(body).items[0].errors[0].code == 131026


def test_value_carries_items_in_body_order():
    def statuses_first(d):
        value = first_value(d)
        status = {"id": out_wamid("S009"), "status": "read", "timestamp": str(T), "recipient_id": USER}
        d["entry"][0]["changes"][0]["value"] = {
            "messaging_product": "whatsapp", "metadata": value["metadata"],
            "statuses": [status], "contacts": value["contacts"], "messages": value["messages"],
        }

    kinds = [type(i) for i in parse(edited("text__plain", statuses_first)).items]
    assert kinds == [StatusUpdate, InboundMessage]


@pytest.mark.parametrize(
    "given, expected",
    [
        (50, "TIER_50"), (250, "TIER_250"), (1000, "TIER_1K"), (2000, "TIER_2K"),
        (10000, "TIER_10K"), (100000, "TIER_100K"), (-1, "TIER_UNLIMITED"),
        ("2000", "TIER_2K"), ("-1", "TIER_UNLIMITED"), ("TIER_2K", "TIER_2K"),
        ("tier_unlimited", "TIER_UNLIMITED"), ("TIER_NOT_SET", "TIER_NOT_SET"), (None, None), ("", None),
    ],
)
def test_messaging_limit_forms(given, expected):
    assert normalise_messaging_limit(given) == expected


@pytest.mark.parametrize("given", ["lots", True, 0, -5, 2.5, [250]])
def test_messaging_limit_garbage_is_refused(given):
    with pytest.raises(PayloadError, match="messaging limit"):
        normalise_messaging_limit(given)


@pytest.mark.parametrize(
    "given", ["authentication-international", "authentication_international", "AUTHENTICATION-INTERNATIONAL"]
)
def test_authentication_international_spellings(given):
    assert normalise_category(given) == "authentication_international"


def test_other_categories_are_lower_cased_only():
    assert normalise_category("MARKETING_LITE") == "marketing_lite"
    assert normalise_category(None) is None


# --- bad bodies: each says exactly what is wrong ----------------------------------------

M0 = "entry[0].changes[0].value.messages[0]"
S0 = "entry[0].changes[0].value.statuses[0]"


def drop(path: list[Any], key: str) -> Callable[[dict[str, Any]], None]:
    def change(doc):
        target = doc
        for step in path:
            target = target[step]
        del target[key]

    return change


def set_(path: list[Any], key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc):
        target = doc
        for step in path:
            target = target[step]
        target[key] = value

    return change


MSG = ["entry", 0, "changes", 0, "value", "messages", 0]
STATUS = ["entry", 0, "changes", 0, "value", "statuses", 0]
VALUE = ["entry", 0, "changes", 0, "value"]

BAD_BODIES = {
    "empty": (b"", "body is empty"),
    "whitespace": (b" \r\n", "body is empty"),
    "not_json": (b"hub.challenge=1158201444", "body is not JSON: Expecting value: line 1 column 1 (char 0)"),
    "truncated_json": (
        raw("text__plain")[:40],
        "body is not JSON: Unterminated string starting at: line 2 column 13 (char 14)",
    ),
    "not_utf8": (
        b'{"object": "whatsapp_business_account", "x": "\xff"}',
        "body is not UTF-8: invalid byte at offset 46",
    ),
    "json_array": (b"[]", "body is a JSON array, not an object"),
    "no_object": (b'{"entry": []}', "body: `object` is missing (expected 'whatsapp_business_account')"),
    "wrong_object": (
        b'{"object": "page", "entry": []}',
        "body: `object` is 'page', not 'whatsapp_business_account'",
    ),
    "no_entry": (b'{"object": "whatsapp_business_account"}', "body: `entry` is missing"),
    "entry_not_list": (
        b'{"object": "whatsapp_business_account", "entry": {"id": "1"}}',
        "body: `entry` is not a list (got a JSON object)",
    ),
}

BAD_EDITS = {
    "entry_without_id": ("text__plain", drop(["entry", 0], "id"), "entry[0]: `id` is missing"),
    "changes_not_list": ("text__plain", set_(["entry", 0], "changes", "messages"),
                         "entry[0]: `changes` is not a list (got a JSON string)"),
    "change_without_field": ("text__plain", drop(["entry", 0, "changes", 0], "field"),
                             "entry[0].changes[0]: `field` is missing"),
    "value_not_object": ("text__plain", set_(["entry", 0, "changes", 0], "value", []),
                         "entry[0].changes[0].value: expected an object, got a JSON array"),
    "no_metadata": ("text__plain", drop(VALUE, "metadata"),
                    "entry[0].changes[0].value: `metadata` is missing (phone_number_id routes the change)"),
    "no_phone_number_id": ("text__plain", drop(VALUE + ["metadata"], "phone_number_id"),
                           "entry[0].changes[0].value.metadata: `phone_number_id` is missing"),
    "messages_not_list": ("text__plain", set_(VALUE, "messages", {}),
                          "entry[0].changes[0].value: `messages` is not a list (got a JSON object)"),
    "message_without_id": ("text__plain", drop(MSG, "id"), f"{M0}: `id` is missing"),
    "message_with_empty_id": ("text__plain", set_(MSG, "id", ""), f"{M0}: `id` is empty"),
    "message_without_timestamp": ("text__plain", drop(MSG, "timestamp"), f"{M0}: `timestamp` is missing"),
    "message_timestamp_not_seconds": ("text__plain", set_(MSG, "timestamp", "2026-11-18T11:06:40Z"),
                                      f"{M0}.timestamp: '2026-11-18T11:06:40Z' "
                                      "is not a Unix timestamp in seconds"),
    "message_timestamp_in_milliseconds": ("text__plain", set_(MSG, "timestamp", "1795000000000000"),
                                          f"{M0}.timestamp: '1795000000000000' "
                                          "is out of range for a Unix timestamp in seconds"),
    "message_without_type": ("text__plain", drop(MSG, "type"), f"{M0}: `type` is missing"),
    "message_without_sender": ("text__plain", lambda d: (drop(MSG, "from")(d), drop(VALUE, "contacts")(d)),
                               f"{M0}: no sender (neither `from` nor `from_user_id`)"),
    "text_not_object": ("text__plain", set_(MSG, "text", "hello"),
                        f"{M0}.text: expected an object, got a JSON string"),
    "media_without_id": ("image__caption", drop(MSG + ["image"], "id"), f"{M0}.image: media without `id`"),
    "reaction_without_target": ("reaction__emoji", drop(MSG + ["reaction"], "message_id"),
                                f"{M0}.reaction: `message_id` is missing"),
    "location_without_latitude": ("location__bare", drop(MSG + ["location"], "latitude"),
                                  f"{M0}.location: `latitude` is missing"),
    "interactive_without_type": ("interactive__list_reply", drop(MSG + ["interactive"], "type"),
                                 f"{M0}.interactive: `type` is missing"),
    "edit_without_original": ("edit__text", drop(MSG + ["edit"], "original_message_id"),
                              f"{M0}.edit: `original_message_id` is missing"),
    "status_without_id": ("status__read", drop(STATUS, "id"), f"{S0}: `id` is missing"),
    "status_without_status": ("status__read", drop(STATUS, "status"), f"{S0}: `status` is missing"),
    "status_without_timestamp": ("status__read", drop(STATUS, "timestamp"), f"{S0}: `timestamp` is missing"),
    "error_without_code": ("status__failed_131026", drop(STATUS + ["errors", 0], "code"),
                           f"{S0}.errors[0]: `code` is missing"),
    "error_code_not_integer": ("status__failed_131026", set_(STATUS + ["errors", 0], "code", "E131026"),
                               f"{S0}.errors[0].code: expected an integer, got 'E131026'"),
    "billable_not_boolean": ("status__sent_pmp", set_(STATUS + ["pricing"], "billable", "yes"),
                             f"{S0}.pricing.billable: expected true/false, got 'yes'"),
    "template_without_id": ("message_template_status_update__approved", drop(VALUE, "message_template_id"),
                            "entry[0].changes[0].value: `message_template_id` is missing"),
    "template_status_without_event": ("message_template_status_update__approved", drop(VALUE, "event"),
                                      "entry[0].changes[0].value: `event` is missing"),
    "entry_time_garbage": ("message_template_status_update__approved", set_(["entry", 0], "time", "soon"),
                           "entry[0].time: 'soon' is not a Unix timestamp in seconds"),
    "messaging_limit_garbage": ("business_capability_update__tier",
                                set_(VALUE, "max_daily_conversations_per_business", "a lot"),
                                "entry[0].changes[0].value.max_daily_conversations_per_business: "
                                "'a lot' is neither an integer nor a TIER_* value"),
    "preference_without_value": ("user_preferences__stop", drop(VALUE + ["user_preferences", 0], "value"),
                                 "entry[0].changes[0].value.user_preferences[0]: `value` is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_is_refused_with_the_reason(case):
    body, message = BAD_BODIES[case]
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert str(caught.value) == message


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_wrong_shape_is_refused_with_the_place(case):
    """Only the part at fault is refused: the envelope still parses, the part is named."""
    fixture, change, message = BAD_EDITS[case]
    body = edited(fixture, change)
    good = parse(raw(fixture))  # the unedited fixture is fine: the edit is what breaks it
    assert good.problems == ()
    parsed = parse(body)
    assert parsed.problems == (message,)
    assert len(parsed.items) == len(good.items) - 1


def test_parse_wants_bytes():
    with pytest.raises(TypeError):
        parse(raw("text__plain").decode())  # type: ignore[arg-type]


# --- X-Hub-Signature-256 ----------------------------------------------------------------

SECRET = "3f6c1a9e2b7d40c58e1f9a2b3c4d5e6f"


def test_sign_meta_known_answer():
    # RFC-style HMAC-SHA256 vector: key "key", the quick brown fox
    header = sign_meta("key", b"The quick brown fox jumps over the lazy dog")
    assert header == "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def test_good_signature_over_raw_bytes():
    body = raw("text__referral_image_ad")
    assert verify_meta_signature(SECRET, body, sign_meta(SECRET, body))


def test_wrong_secret():
    body = raw("text__plain")
    assert not verify_meta_signature(SECRET, body, sign_meta("another-app-secret", body))


def test_tampered_body():
    body = raw("text__plain")
    header = sign_meta(SECRET, body)
    tampered = body.replace(b"#1042", b"#1043")
    assert tampered != body
    assert not verify_meta_signature(SECRET, tampered, header)
    assert not verify_meta_signature(SECRET, body + b"\n", header)


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha256", "sha256=zz", "sha1=<digest>", "<digest>", "md5=<digest>",
     "sha256=<digest>00", "sha256=<digest-truncated>", "sha256=\u00e9<digest>"],
)
def test_missing_or_garbled_header(header):
    body = raw("text__plain")
    digest = sign_meta(SECRET, body).removeprefix("sha256=")
    if header is not None:
        header = header.replace("<digest-truncated>", digest[:-2]).replace("<digest>", digest)
    assert not verify_meta_signature(SECRET, body, header)


def test_header_case_and_whitespace_are_tolerated():
    body = raw("text__plain")
    digest = sign_meta(SECRET, body).removeprefix("sha256=")
    assert verify_meta_signature(SECRET, body, f" SHA256={digest.upper()} ")


def test_empty_secret_never_verifies():
    body = raw("text__plain")
    signed_with_empty_key = "sha256=" + hmac_sha256_hex(b"", body)
    assert not verify_meta_signature("", body, signed_with_empty_key)
    assert not verify_meta_signature("", body, sign_meta(SECRET, body))
    with pytest.raises(ValueError):
        sign_meta("", body)


def test_re_serialised_json_does_not_match():
    body = raw("text__referral_image_ad")  # \u2600, \ufe0f and \/ as Meta escapes them
    header = sign_meta(SECRET, body)
    doc = json.loads(body)
    for rendering in (
        json.dumps(doc).encode(),
        json.dumps(doc, separators=(",", ":")).encode(),  # same spacing, but "/" unescaped
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
    ):
        assert rendering != body
        assert json.loads(rendering) == doc
        assert not verify_meta_signature(SECRET, rendering, header)


def test_order_total_uses_decimal_arithmetic():
    # 3 × 0.1 is 0.30000000000000004 in floats; the rendering must say 0.30
    def cheap(d):
        first_value(d)["messages"][0]["order"]["product_items"] = [
            {"product_retailer_id": "PIN", "quantity": 3, "item_price": 0.1, "currency": "USD"}
        ]
        first_value(d)["messages"][0]["order"]["text"] = ""

    msg = parse(edited("order__cart", cheap)).items[0]
    assert msg.text == "🛒 Order: 3 × PIN @ 0.10 USD; total 0.30 USD"
