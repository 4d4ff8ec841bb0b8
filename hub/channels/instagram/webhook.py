"""GET and POST /webhooks/instagram/<channel key>: Meta's subscription handshake and its
messaging webhooks for one Instagram account, received as every kind's are
(hub.channels.receiver).

GET echoes hub.challenge when hub.mode is "subscribe" and hub.verify_token is the
channel's (else 403). POST is signed with the app secret (X-Hub-Signature-256 over the
raw bytes): a wrong or missing signature is refused with 401 before anything is
stored.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Mapping

from hub.channels.base import WebhookAnswer
from hub.channels.instagram.channels import KIND
from hub.channels.receiver import Receiving, answer_handshake
from hub.channels.webhook_cache import WebhookCache, channel_of_kind

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

RECEIVING = Receiving(
    kept_headers=("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For"),
    refused=WebhookAnswer(401, "signature does not match"),
    log=logging.getLogger(__name__),
    refused_note="rejected an Instagram webhook for channel %s: bad signature",
    bad_data_note="instagram webhook for channel %s did not store whole (%s); storing it part by part",
)


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


def verify(runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer:
    with runtime.db.scope() as session:
        account = find_account(session, runtime.vault, key)
    return answer_handshake(None if account is None else account.verify_token, args)
