"""Emulated WhatsApp users: every inbound message type a hub must handle (spec §3).

Each `send_*` builds the `messages[]` item Meta would post, registers it in the emulator
(which opens or refreshes the user's 24-hour window for content types, remembers a
Click-to-WhatsApp referral for the free entry point, stores media so the hub can fetch
it) and queues it for the webhook driver. Each returns the item as it will be posted,
so a test knows the message id.
"""
from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from hub.channels.whatsapp.emulator.errors import webhook_error
from hub.channels.whatsapp.emulator.state import Number, Recipient

if TYPE_CHECKING:
    from hub.channels.whatsapp.emulator import WhatsAppEmulator

SAMPLE_MEDIA = {
    "image": (b"\xff\xd8\xff\xe0\x00\x10JFIF emulated image", "image/jpeg"),
    "audio": (b"OggS\x00\x02 emulated voice note", "audio/ogg; codecs=opus"),
    "video": (b"\x00\x00\x00\x18ftypmp42 emulated video", "video/mp4"),
    "document": (b"%PDF-1.4\n% emulated document\n", "application/pdf"),
    "sticker": (b"RIFF\x00\x00\x00\x00WEBPVP8 emulated sticker", "image/webp"),
}


def ctwa_referral(**overrides: Any) -> dict[str, Any]:
    """A Click-to-WhatsApp ad referral (spec §3.11); pass keys to override or None to drop."""
    referral: dict[str, Any] = {
        "source_url": "https://fb.me/3cr4Wqqkv",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "headline": "Chat with us",
        "body": "Summer collection is here",
        "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/emulated_ad.jpg",
        "ctwa_clid": "Aff-" + secrets.token_urlsafe(24),
        "welcome_message": {"text": "Hi there! How can we help?"},
    }
    referral.update(overrides)
    return {k: v for k, v in referral.items() if v is not None}


class Customer:
    """A user writing to one business number. Get one with `emulator.customer(...)`."""

    def __init__(self, emulator: "WhatsAppEmulator", number: Number, recipient: Recipient):
        self.emulator = emulator
        self.number = number
        self.recipient = recipient

    @property
    def wa_id(self) -> str | None:
        return self.recipient.wa_id

    @property
    def user_id(self) -> str:
        return self.recipient.user_id

    def _context(self, message_id: str | None) -> dict[str, Any] | None:
        return {"from": self.number.display_phone_number, "id": message_id} if message_id else None

    def send(self, msg_type: str, content: Any, *, context: dict[str, Any] | None = None,
             referral: dict[str, Any] | None = None, errors: list[dict[str, Any]] | None = None,
             with_contact: bool = True) -> dict[str, Any]:
        """Any message type, including ones Meta may add later (revoke, edit, ...)."""
        item: dict[str, Any] = {}
        if context:
            item["context"] = context
        item["type"] = msg_type
        item[msg_type] = content
        if referral:
            item["referral"] = referral
        if errors:
            item["errors"] = errors
        return self.emulator.receive(self.number, self.recipient, item, with_contact=with_contact)

    def send_text(self, body: str, *, reply_to: str | None = None,
                  referral: dict[str, Any] | None = None, forwarded: bool = False,
                  frequently_forwarded: bool = False) -> dict[str, Any]:
        context = self._context(reply_to)
        if forwarded or frequently_forwarded:
            context = dict(context or {})
            context["frequently_forwarded" if frequently_forwarded else "forwarded"] = True
        return self.send("text", {"body": body}, context=context, referral=referral)

    def send_from_ad(self, body: str = "Can I get more info about this?", **referral: Any) -> dict[str, Any]:
        """First message from a Click-to-WhatsApp ad: opens the window and makes the
        business's reply within 24 h start a 72-hour free entry point."""
        return self.send_text(body, referral=ctwa_referral(**referral))

    def send_media(self, kind: str, data: bytes | None = None, *, mime_type: str | None = None,
                   caption: str | None = None, filename: str | None = None, voice: bool = True,
                   animated: bool = False, reply_to: str | None = None,
                   referral: dict[str, Any] | None = None) -> dict[str, Any]:
        if kind not in SAMPLE_MEDIA:
            raise ValueError(f"media kind must be one of {', '.join(SAMPLE_MEDIA)}")
        sample, sample_mime = SAMPLE_MEDIA[kind]
        media = self.emulator.store_inbound_media(self.number, sample if data is None else data,
                                                  mime_type or sample_mime, filename)
        content: dict[str, Any] = {}
        if caption is not None and kind in ("image", "video", "document"):
            content["caption"] = caption
        if kind == "document":
            content["filename"] = filename or "document.pdf"
        content.update({"mime_type": media.mime_type, "sha256": media.sha256_b64, "id": media.id})
        if kind == "audio":
            content["voice"] = voice
        if kind == "sticker":
            content["animated"] = animated
        url = self.emulator.inbound_media_url(media)
        if url:
            content["url"] = url
        return self.send(kind, content, context=self._context(reply_to), referral=referral)

    def send_image(self, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
        return self.send_media("image", data, **kw)

    def send_audio(self, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
        return self.send_media("audio", data, **kw)

    def send_video(self, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
        return self.send_media("video", data, **kw)

    def send_document(self, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
        return self.send_media("document", data, **kw)

    def send_sticker(self, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
        return self.send_media("sticker", data, **kw)

    def send_location(self, latitude: float, longitude: float, *, name: str | None = None,
                      address: str | None = None, url: str | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        for key, value in (("name", name), ("address", address), ("url", url)):
            if value is not None:
                content[key] = value
        return self.send("location", content)

    def send_contacts(self, contacts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        default = [{
            "name": {"formatted_name": "Jo Bloggs", "first_name": "Jo", "last_name": "Bloggs"},
            "phones": [{"phone": "+1 555-010-0000", "wa_id": "15550100000", "type": "CELL"}],
            "emails": [{"email": "jo@example.com", "type": "WORK"}],
            "org": {"company": "Acme"},
        }]
        return self.send("contacts", contacts if contacts is not None else default)

    def reply_button(self, message_id: str, button_id: str, title: str) -> dict[str, Any]:
        """Taps a reply button of an interactive message the business sent."""
        return self.send("interactive", {"type": "button_reply",
                                         "button_reply": {"id": button_id, "title": title}},
                         context=self._context(message_id))

    def reply_list(self, message_id: str, row_id: str, title: str,
                   description: str | None = None) -> dict[str, Any]:
        row = {"id": row_id, "title": title}
        if description is not None:
            row["description"] = description
        return self.send("interactive", {"type": "list_reply", "list_reply": row},
                         context=self._context(message_id))

    def reply_flow(self, message_id: str, response: dict[str, Any], *, body: str = "Sent") -> dict[str, Any]:
        nfm = {"name": "flow", "body": body, "response_json": json.dumps(response)}
        return self.send("interactive", {"type": "nfm_reply", "nfm_reply": nfm},
                         context=self._context(message_id))

    def press_template_button(self, message_id: str | None, payload: str, text: str) -> dict[str, Any]:
        """Taps a QUICK_REPLY button of a template (type `button`, not `interactive`)."""
        return self.send("button", {"payload": payload, "text": text},
                         context=self._context(message_id))

    def react(self, message_id: str, emoji: str = "\U0001f44d") -> dict[str, Any]:
        """An empty emoji removes the reaction."""
        return self.send("reaction", {"message_id": message_id, "emoji": emoji})

    def send_order(self, items: list[dict[str, Any]] | None = None, *,
                   catalog_id: str = "354160437058781", text: str = "") -> dict[str, Any]:
        items = items if items is not None else [
            {"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 19.9, "currency": "EUR"}]
        return self.send("order", {"catalog_id": catalog_id, "text": text, "product_items": items})

    def change_number(self, new_wa_id: str) -> dict[str, Any]:
        """A `system` message: the user moved to another number (no contacts block)."""
        body = f"User {self.recipient.name or 'A'} changed from {self.wa_id} to {new_wa_id}"
        return self.send("system", {"body": body, "wa_id": new_wa_id, "type": "user_changed_number"},
                         with_contact=False)

    def send_unsupported(self, kind: str = "poll") -> dict[str, Any]:
        return self.send("unsupported", {"type": kind},
                         errors=[webhook_error(131051, "Message type is currently not supported.",
                                               title="Message type unknown")])

    def stop_marketing(self) -> dict[str, Any]:
        """The user turns marketing off: a `user_preferences` webhook, then 131050."""
        return self.emulator.set_marketing_preference(self.number, self.recipient, "stop")

    def resume_marketing(self) -> dict[str, Any]:
        return self.emulator.set_marketing_preference(self.number, self.recipient, "resume")
