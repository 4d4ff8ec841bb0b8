"""GET and POST /webhooks/instagram/<channel key>: Meta's subscription handshake and its
messaging webhooks for one Instagram account.

GET echoes hub.challenge when hub.mode is "subscribe" and hub.verify_token is the
channel's (else 403). POST is signed with the app secret (X-Hub-Signature-256 over the
raw bytes): a wrong or missing signature is refused with 401 before anything is
stored. Otherwise the raw body is stored and applied in ONE transaction
(hub.events.raw_webhooks.receive) and 200 answered after the commit: a body that does not parse is
kept (failed, replayable) and still answered 200, so Meta does not resend it; a
database failure answers 500, so Meta retries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import bindparam, update

from hub.channels.base import ChannelKind, Inbound
from hub.channels.instagram.channels import KIND
from hub.channels.webhook_cache import WebhookCache, channel_of_kind
from hub.events.raw_webhooks import describe, is_bad_data, receive
from hub.models import Channel
from hub.shared.security import constant_time_equal

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

log = logging.getLogger(__name__)
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For")
LAST_WEBHOOK_EVERY = timedelta(seconds=30)
_NOTE_LAST_WEBHOOK = update(Channel.__table__).where(Channel.__table__.c.id == bindparam("channel_id"))


@dataclass(frozen=True)
class WebhookAccount:
    """What the route and the ingest need of an account's channel (and event payloads show)."""

    id: int
    name: str
    display_number: str
    phone_number_id: str
    kind: str
    app_secret: str
    verify_token: str
    last_webhook_at: datetime | None


def find_account(session, vault: "Vault", key: str) -> WebhookAccount | None:
    row = channel_of_kind(session, key, KIND)
    if row is None:
        return None
    secrets = vault.decrypt(row.secrets_enc)
    return WebhookAccount(row.id, row.name, row.display_number, row.phone_number_id, row.kind,
                          secrets.get("app_secret", ""), secrets.get("verify_token", ""), row.last_webhook_at)


def account_cache(vault: "Vault") -> WebhookCache[WebhookAccount]:
    """A web process's copies of its accounts (hub.channels.webhook_cache)."""
    return WebhookCache(lambda session, key: find_account(session, vault, key))


def verify(runtime: "Runtime", key: str, args: Mapping[str, str]) -> tuple[int, str]:
    with runtime.db.scope() as session:
        account = find_account(session, runtime.vault, key)
    if account is None:
        return 404, "no such channel"
    token = args.get("hub.verify_token", "")
    if args.get("hub.mode") != "subscribe" or not account.verify_token or \
            not constant_time_equal(token, account.verify_token):
        return 403, "verify token does not match this channel"
    return 200, args.get("hub.challenge", "")


def receive_webhook(runtime: "Runtime", kind: ChannelKind, key: str, headers: Mapping[str, str], body: bytes,
                    now: datetime, accounts: WebhookCache[WebhookAccount] | None = None) -> tuple[int, str]:
    """(HTTP status, body) for one webhook request; `accounts`: the process's copies of
    its accounts (else the row is read)."""
    kept = {name: value for name in KEPT_HEADERS if (value := headers.get(name)) is not None}
    accounts = accounts or account_cache(runtime.vault)
    inbound = Inbound(headers=headers, body=body)
    account = None
    try:
        with runtime.db.scope() as session:
            account = accounts.get(session, key)
            if account is not None and not kind.authentic(account, inbound):
                account = accounts.get(session, key, fresh=True)  # the app secret may have just changed
                if account is not None and not kind.authentic(account, inbound):
                    log.warning("rejected an Instagram webhook for channel %s: bad signature", account.id)
                    return 401, "signature does not match"
            if account is None:
                return 404, "no such channel"
            noted = _store(session, runtime, account, kept, body, now)
    except Exception as exc:
        if account is None or not is_bad_data(exc):
            raise
        log.warning("instagram webhook for channel %s did not store whole (%s); storing it part by part",
                    account.id, describe(exc))
        with runtime.db.scope() as session:
            noted = _store(session, runtime, account, kept, body, now, isolate=True)
    if noted:
        accounts.webhook_seen(key, now)
    return 200, "ok"


def _store(session, runtime: "Runtime", account: WebhookAccount, headers: dict[str, str], body: bytes,
           now: datetime, *, isolate: bool = False) -> bool:
    """Keep and apply the body; True when the channel's last-webhook time was written."""
    receive(session, source="instagram", channel_id=account.id, channel=account, headers=headers, body=body,
            now=now, runtime=runtime, isolate=isolate)
    noted = account.last_webhook_at is None or now - account.last_webhook_at > LAST_WEBHOOK_EVERY
    if noted:
        session.execute(_NOTE_LAST_WEBHOOK, {"channel_id": account.id, "last_webhook_at": now})
    return noted
