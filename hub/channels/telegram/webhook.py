"""POST /webhooks/telegram/<channel key>: one update per request, from Telegram,
received as every kind's webhooks are (hub.channels.receiver).

Telegram signs nothing; the secret_token given to setWebhook comes back in
X-Telegram-Bot-Api-Secret-Token, and a request without the channel's is refused with
403 before anything is stored.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hub.channels.base import WebhookAnswer
from hub.channels.receiver import OK, Receiving
from hub.channels.telegram.channels import KIND
from hub.channels.telegram.parse import callback_answer
from hub.channels.webhook_cache import WebhookCache, channel_of_kind

if TYPE_CHECKING:
    from hub.shared.security import Vault


@dataclass(frozen=True)
class WebhookBot:
    """What the route and the ingest need of a bot's channel (and event payloads show)."""

    id: int
    name: str
    display_number: str
    phone_number_id: str
    kind: str
    secret_token: str
    last_webhook_at: datetime | None


def find_bot(session, vault: "Vault", key: str) -> WebhookBot | None:
    row = channel_of_kind(session, key, KIND)
    if row is None:
        return None
    return WebhookBot(row.id, row.name, row.display_number, row.phone_number_id, row.kind,
                      vault.decrypt(row.secrets_enc).get("secret_token", ""), row.last_webhook_at)


def bot_cache(vault: "Vault") -> WebhookCache[WebhookBot]:
    """A web process's copies of its bots (hub.channels.webhook_cache)."""
    return WebhookCache(lambda session, key: find_bot(session, vault, key))


def _answer(body: bytes) -> WebhookAnswer:
    """A button press is answered with answerCallbackQuery in the webhook's answer (the
    Bot API runs a method given there), so the user's button stops spinning without a
    call of the hub's own."""
    answer = callback_answer(body)
    if answer is not None:
        return WebhookAnswer(200, json.dumps(answer), "application/json")
    return OK


RECEIVING = Receiving(
    kept_headers=("Content-Type", "User-Agent", "X-Forwarded-For"),  # never the secret token
    refused=WebhookAnswer(403, "secret token does not match"),
    log=logging.getLogger(__name__),
    refused_note="rejected a Telegram update for channel %s: wrong secret token",
    bad_data_note="telegram update for channel %s did not store (%s); keeping it as failed",
    answer=_answer,
)
