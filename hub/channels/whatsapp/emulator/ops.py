"""What the emulator's endpoints do once the caller is authenticated.

Kept apart from Flask routing (app.py) so the rules read in one place: the
order of checks on a send (structure, template, media, throughput 130429, pair limit
131056, window 131047, opt-out 131050, undeliverable 131026), which statuses follow an
accepted message, how media URLs expire, and how the template list pages.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any, Mapping
from urllib.parse import urlencode

import phonenumbers

from hub.channels.whatsapp.emulator.campaigns import DOWNGRADE
from hub.channels.whatsapp.emulator.errors import GraphError, bad_value, invalid, missing, webhook_error
from hub.channels.whatsapp.emulator.send import Outgoing, parse_send
from hub.channels.whatsapp.emulator.state import (
    FEP_WINDOW, TEMPLATE_DEFAULT_FIELDS, TEMPLATE_FIELDS, TEMPLATE_STATUSES, WINDOW, MediaItem,
    Number, ReadMark, Recipient, SentMessage, Template,
)
from hub.channels.whatsapp.emulator.templates import (
    check_template_send, encode_cursor, new_template_fields, page,
)
from hub.channels.whatsapp.emulator.webhooks import (
    Update, epoch, new_wamid, pricing, status_item,
)


MEDIA_LIMITS = {  # kind -> (MIME types, max bytes), spec §11
    "audio": ({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}, 16 * 2**20),
    "document": ({"text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
                  "application/vnd.ms-powerpoint",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
                 100 * 2**20),
    "image": ({"image/jpeg", "image/png"}, 5 * 2**20),
    "sticker": ({"image/webp"}, 500 * 2**10),
    "video": ({"video/mp4", "video/3gpp"}, 16 * 2**20),
}
PHONE_FIELDS = ("id", "display_phone_number", "verified_name", "quality_rating", "throughput",
                "whatsapp_business_manager_messaging_limit", "messaging_limit_tier", "status",
                "code_verification_status", "name_status", "platform_type", "account_mode",
                "is_official_business_account")
PHONE_DEFAULT_FIELDS = ["verified_name", "code_verification_status", "display_phone_number",
                        "quality_rating", "platform_type", "throughput", "id"]


def media_kind(mime_type: str) -> str | None:
    base = mime_type.split(";")[0].strip().lower()
    for kind, (types, _) in MEDIA_LIMITS.items():
        if base in types:
            return kind
    return None


def _version_major(version: str | None) -> int:
    match = re.match(r"v(\d+)", version or "")
    return int(match.group(1)) if match else 99


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class GraphOperations:
    """Mixed into WhatsAppEmulator; uses its state (see __init__.py)."""

    # -- sending ---------------------------------------------------------------------

    def send(self, number: Number, raw: bytes, version: str | None = None) -> dict[str, Any]:
        out = parse_send(raw)
        with self.lock:
            now = self.clock()
            if out.kind == "read":
                return self._mark_read(number, out, now)
            recipient = self._recipient_for(number, out)
            template = None
            if out.type == "template":
                template = self._approved_template(number.waba_id, out.payload)
                check_template_send(template, out)
            for media_id in out.media_ids:
                media = self.media.get(media_id)
                if media is None or not media.alive(now) or media.waba_id != number.waba_id:
                    raise bad_value(f"Media id {media_id} does not exist or has expired.")
            if self.throughput.full(number.phone_number_id, now, number.mps):
                raise GraphError(130429, f"Cloud API message throughput of {number.mps} messages "
                                         "per second has been reached.")
            pair_key = (number.phone_number_id, recipient.key)
            if self.pair_limit is not None and not self.pair_limit.allows(pair_key, now):
                raise GraphError(131056)
            if recipient.wa_id and recipient.wa_id == number.display_phone_number:
                raise GraphError(131021)
            csw_open = self.window_open(number.phone_number_id, recipient.key, now)
            failure = None
            if template is None and not csw_open:
                failure = GraphError(131047)
            elif template is not None and template.category == "MARKETING" and recipient.marketing_opted_out:
                failure = GraphError(131050)
            elif recipient.undeliverable:
                failure = GraphError(131026)
            if failure is not None and failure.code not in self.async_error_codes:
                raise failure
            if failure is None and template is not None:
                held = self.campaigns.failure_code(user=recipient.key, category=template.category,
                                                   csw_open=csw_open, tier=number.messaging_limit, now=now)
                failure = GraphError(held) if held is not None else None
                pause = failure is None and self.campaigns.record(
                    user=recipient.key, template_id=template.id, category=template.category,
                    csw_open=csw_open, now=now)
            else:
                pause = False
            self.throughput.record(number.phone_number_id, now)
            if self.pair_limit is not None:
                self.pair_limit.take(pair_key, now)
            msg = SentMessage(new_wamid(recipient.wa_id), number.phone_number_id,
                              out.to or out.recipient or "", recipient, out.type, out.body, now,
                              template=template, error_code=failure.code if failure else None)
            updates = self._statuses(number, msg, out, csw_open, failure, version)
            self.sent.append(msg)
        self.driver.enqueue(updates)
        if pause:  # the template's block rate passed the threshold: Meta pauses it, quality drops
            self.set_template_status(template, "PAUSED", reason="LOW_QUALITY")
            self.set_quality(number, DOWNGRADE[number.quality_rating])
        contact: dict[str, Any] = {"input": msg.to}
        if recipient.wa_id:
            contact["wa_id"] = recipient.wa_id
        if out.recipient:
            contact["user_id"] = recipient.user_id
        message: dict[str, Any] = {"id": msg.id}
        if template is not None:
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}

    def _mark_read(self, number: Number, out: Outgoing, now: Any) -> dict[str, Any]:
        if out.message_id not in self.inbound_ids.get(number.phone_number_id, set()):
            raise bad_value(f"Param message_id: {out.message_id} is not a message this number received.")
        self.read_marks.append(ReadMark(number.phone_number_id, str(out.message_id), out.typing, now))
        return {"success": True}

    def _recipient_for(self, number: Number, out: Outgoing) -> Recipient:
        if out.to:
            digits = re.sub(r"\D", "", out.to)
            if not out.to.strip().startswith("+"):
                country = str(phonenumbers.parse("+" + number.display_phone_number).country_code)
                if not digits.startswith(country):  # Meta prepends the business's country code
                    digits = country + digits
            if not 7 <= len(digits) <= 15:
                raise bad_value(f"Param to: {out.to!r} is not a valid phone number.")
            return self.recipient(digits)
        recipient = self._by_user_id.get(str(out.recipient))
        if recipient is None:
            raise bad_value(f"Param recipient: {out.recipient!r} is not a known business-scoped user id.")
        return recipient

    def _approved_template(self, waba_id: str, payload: dict[str, Any]) -> Template:
        name, code = payload["name"], payload["language"]["code"]
        for tpl in self.templates.values():
            if tpl.waba_id == waba_id and tpl.name == name and tpl.language == code:
                if tpl.status != "APPROVED":
                    raise GraphError(132001, f"template name ({name}) is {tpl.status}, not APPROVED, "
                                             f"in {code}")
                return tpl
        raise GraphError(132001, f"template name ({name}) does not exist in {code}")

    def _fep(self, number: Number, recipient: Recipient, now: Any) -> tuple[Any, str] | None:
        """The free entry point window this send falls in, starting it if this is the
        first reply within 24 h of a Click-to-WhatsApp referral (spec §10.2)."""
        key = (number.phone_number_id, recipient.key)
        fep = self.fep_windows.get(key)
        if fep and now < fep[0]:
            return fep
        ctwa_at = self.ctwa_referrals.pop(key, None)
        if ctwa_at is not None and now < ctwa_at + WINDOW:
            fep = (now + FEP_WINDOW, hashlib.md5(f"fep:{key}:{now}".encode()).hexdigest())
            self.fep_windows[key] = fep
            return fep
        return None

    def _statuses(self, number: Number, msg: SentMessage, out: Outgoing, csw_open: bool,
                  failure: GraphError | None, version: str | None) -> list[Update]:
        ts, rec = epoch(msg.at), msg.recipient
        bsuid = rec.user_id if (self.bsuid_since is not None and msg.at >= self.bsuid_since) else None
        contact = {"wa_id": rec.wa_id, "user_id": bsuid} if bsuid and rec.wa_id else (
            {"user_id": bsuid} if bsuid else None)

        def update(item: dict[str, Any], with_contact: bool = True) -> Update:
            msg.statuses.append(item["status"])
            return Update(number, "messages", "status", item, contact if with_contact else None,
                          group=msg.id)

        common = {"recipient_user_id": bsuid, "biz_opaque": out.biz_opaque}
        if failure is not None:
            return [update(status_item(msg.id, "failed", ts, rec.wa_id, biz_opaque=out.biz_opaque,
                                       errors=[failure.webhook_error()]), with_contact=False)]
        fep = self._fep(number, rec, msg.at)
        tpl = msg.template
        msg.pricing = pricing(msg.at, is_template=tpl is not None,
                              category=tpl.category if tpl else None, csw_open=csw_open,
                              fep_open=fep is not None)
        conv_sent = conv_later = None
        if fep is not None:
            conv_later = {"id": fep[1], "origin": {"type": "referral_conversion"}}
            conv_sent = {**conv_later, "expiration_timestamp": str(epoch(fep[0]))}
        elif _version_major(version) < 24:  # v23 and below: a conversation object per message
            conv_later = {"id": hashlib.md5(msg.id.encode()).hexdigest(),
                          "origin": {"type": msg.pricing["category"]}}
            conv_sent = {**conv_later, "expiration_timestamp": str(ts + 86400)}
        updates = [update(status_item(msg.id, "sent", ts, rec.wa_id, pricing_=msg.pricing,
                                      conversation=conv_sent, **common))]
        if out.type == "reaction":  # reactions only ever produce `sent`
            return updates
        updates.append(update(status_item(msg.id, "delivered", ts + 1, rec.wa_id, pricing_=msg.pricing,
                                          conversation=conv_later, **common)))
        if rec.fail_after_delivery is not None:
            updates.append(update(status_item(msg.id, "failed", ts + 2, rec.wa_id, biz_opaque=out.biz_opaque,
                                              errors=[webhook_error(rec.fail_after_delivery)]),
                                  with_contact=False))
        elif rec.reads:
            updates.append(update(status_item(msg.id, "read", ts + 2, rec.wa_id, **common)))
        return updates

    # -- media -----------------------------------------------------------------------

    def upload_media(self, number: Number, form: Mapping[str, str], files: Mapping[str, Any]) -> dict[str, Any]:
        if form.get("messaging_product") != "whatsapp":
            raise invalid("The parameter messaging_product is required and must be whatsapp.")
        upload = files.get("file")
        if upload is None:
            raise missing("The parameter file is required.")
        data = upload.read()
        mime = form.get("type") or upload.mimetype or ""
        kind = media_kind(mime)
        if kind is None:
            raise GraphError(131053, f"Unsupported MIME type {mime!r}.")
        if len(data) > MEDIA_LIMITS[kind][1]:
            raise GraphError(131053, f"A {kind} file can be at most {MEDIA_LIMITS[kind][1]} bytes; "
                                     f"this one has {len(data)}.")
        with self.lock:
            item = self._store_media(number, data, mime, "upload", upload.filename or None)
        return {"id": item.id}

    def _url_hash(self, media_id: str, ext: int) -> str:
        mac = hmac.new(self._url_key, f"{media_id}:{ext}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def media_url(self, media: MediaItem, host: str) -> str:
        """A fresh download URL valid `media_url_ttl` seconds. 360dialog numbers get Meta's
        lookaside host: the client must swap it for the 360dialog host (spec §12)."""
        ext = epoch(self.clock() + timedelta(seconds=self.media_url_ttl))
        number = self.numbers[media.phone_number_id]
        base = self.lookaside_base if number.is_360dialog else host.rstrip("/")
        return (f"{base}/whatsapp_business/attachments/?mid={media.id}&ext={ext}"
                f"&hash={self._url_hash(media.id, ext)}")

    def media_info(self, media: MediaItem, host: str, phone_number_id: str | None) -> dict[str, Any]:
        if phone_number_id and phone_number_id != media.phone_number_id:
            raise invalid(f"Param phone_number_id: media {media.id} does not belong to {phone_number_id}.")
        return {"messaging_product": "whatsapp", "url": self.media_url(media, host),
                "mime_type": media.mime_type, "sha256": media.sha256_hex,
                "file_size": str(len(media.data)), "id": media.id}

    def media_for_download(self, args: Mapping[str, str]) -> MediaItem | None:
        """The media a download URL points at, or None (404) if forged, expired or gone."""
        mid, ext, given = args.get("mid", ""), args.get("ext", ""), args.get("hash", "")
        if not ext.isdigit() or not hmac.compare_digest(self._url_hash(mid, int(ext)), given):
            return None
        now = self.clock()
        media = self.media.get(mid)
        if media is None or epoch(now) >= int(ext) or not media.alive(now):
            return None
        return media

    def delete_media(self, media: MediaItem) -> dict[str, Any]:
        media.deleted = True
        return {"success": True}

    # -- templates -------------------------------------------------------------------

    def _fields(self, raw: str | None, allowed: tuple[str, ...], default: list[str], node: str) -> list[str]:
        fields = _csv(raw) or default
        for f in fields:
            if f not in allowed:
                raise invalid(f"Tried accessing nonexisting field ({f}) on node type ({node})")
        return fields

    def _waba_templates(self, waba_id: str, filters: Mapping[str, str]) -> list[Template]:
        statuses = [s.upper() for s in _csv(filters.get("status"))]
        for status in statuses:
            if status not in TEMPLATE_STATUSES:
                raise invalid(f"Param status must be one of {{{', '.join(TEMPLATE_STATUSES)}}} - got \"{status}\".")
        name = (filters.get("name") or "").lower()
        category = [c.upper() for c in _csv(filters.get("category"))]
        language = _csv(filters.get("language"))
        found = [t for t in self.templates.values() if t.waba_id == waba_id
                 and (not statuses or t.status in statuses) and (not name or name in t.name.lower())
                 and (not category or t.category in category) and (not language or t.language in language)]
        return sorted(found, key=lambda t: t.seq)

    def list_templates(self, waba_id: str, args: Mapping[str, str], page_url: str) -> dict[str, Any]:
        """GET /{waba_id}/message_templates: Graph paging with cursors and absolute URLs."""
        try:
            limit = int(args.get("limit", 25))
        except ValueError:
            raise invalid("Param limit must be an integer.") from None
        if not 1 <= limit <= 1000:
            raise invalid("Param limit must be between 1 and 1000.")
        fields = self._fields(args.get("fields"), TEMPLATE_FIELDS, TEMPLATE_DEFAULT_FIELDS,
                              "WhatsAppBusinessHSM")
        with self.lock:
            items = self._waba_templates(waba_id, args)
            chosen, more_before, more_after = page(items, limit, args.get("after"), args.get("before"))
            now = self.clock()
            data = [t.graph(fields, now) for t in chosen]
        body: dict[str, Any] = {"data": data}
        if chosen:
            first, last = encode_cursor(chosen[0].seq), encode_cursor(chosen[-1].seq)
            paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
            keep = {k: v for k, v in args.items() if k not in ("after", "before")}
            keep["limit"] = str(limit)
            if more_after:
                paging["next"] = f"{page_url}?{urlencode({**keep, 'after': last})}"
            if more_before:
                paging["previous"] = f"{page_url}?{urlencode({**keep, 'before': first})}"
            body["paging"] = paging
        return body

    def create_template(self, waba_id: str, body: Any) -> dict[str, Any]:
        fields = new_template_fields(body)
        with self.lock:
            for tpl in self.templates.values():
                if tpl.waba_id == waba_id and tpl.name == fields["name"] and tpl.language == fields["language"]:
                    raise GraphError(100, f"Content in this language already exists: {fields['name']} "
                                          f"({fields['language']}).", subcode=2388024)
            tpl = self.add_template(waba_id, status="PENDING", **fields)
        if self.template_review != "pending":
            self.set_template_status(tpl, "APPROVED" if self.template_review == "approve" else "REJECTED",
                                     reason=None if self.template_review == "approve" else "INVALID_FORMAT")
        return {"id": tpl.id, "status": "PENDING", "category": tpl.category}

    def delete_templates(self, waba_id: str, name: str | None, hsm_id: str | None) -> dict[str, Any]:
        if not name:
            raise missing("The parameter name is required.")
        with self.lock:
            doomed = [t for t in self.templates.values() if t.waba_id == waba_id and t.name == name
                      and (not hsm_id or t.id == hsm_id)]
            if not doomed:
                raise invalid(f"Message template {name!r} not found.")
            for tpl in doomed:
                del self.templates[tpl.id]
        return {"success": True}

    def d360_list_templates(self, number: Number, args: Mapping[str, str]) -> dict[str, Any]:
        """360dialog's GET /v1/configs/templates: offset paging over the number's WABA."""
        try:
            limit, offset = int(args.get("limit", 1000)), int(args.get("offset", 0))
            filters = json.loads(args.get("filters") or "{}")
        except ValueError:
            raise invalid("limit and offset must be integers and filters a JSON object.") from None
        if not isinstance(filters, dict) or limit < 0 or offset < 0:
            raise invalid("limit and offset must be non-negative and filters a JSON object.")
        with self.lock:
            items = [t for t in self._waba_templates(number.waba_id, {})
                     if all(str(getattr(t, k, None)) == str(v) for k, v in filters.items())]
            now = self.clock()
            chosen = [t.graph(list(TEMPLATE_FIELDS), now) for t in items[offset:offset + limit]]
        return {"count": len(chosen), "filters": filters, "limit": limit, "offset": offset,
                "sort": ["id"], "total": len(items), "waba_templates": chosen}

    # -- phone number ----------------------------------------------------------------

    def phone_number_fields(self, number: Number, raw_fields: str | None) -> dict[str, Any]:
        fields = self._fields(raw_fields, PHONE_FIELDS, PHONE_DEFAULT_FIELDS, "WhatsAppBusinessPhoneNumber")
        parsed = phonenumbers.parse("+" + number.display_phone_number)
        values = {
            "id": number.phone_number_id,
            "display_phone_number": phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
            "verified_name": number.verified_name,
            "quality_rating": number.quality_rating,
            "throughput": {"level": number.throughput_level},
            "whatsapp_business_manager_messaging_limit": number.messaging_limit,
            "messaging_limit_tier": number.messaging_limit,
            "status": number.status,
            "code_verification_status": "VERIFIED",
            "name_status": "APPROVED",
            "platform_type": "CLOUD_API",
            "account_mode": "LIVE",
            "is_official_business_account": False,
        }
        return {f: values[f] for f in fields}
