"""GET and POST /webhooks/whatsapp/<channel key>: Meta's subscription handshake, and
the webhooks of one number from Meta (signed with the app secret) or from a 360dialog
relay (its header token), received as every kind's are (hub.channels.receiver).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import select

from hub.channels.base import WebhookAnswer
from hub.channels.receiver import Receiving, answer_handshake
from hub.channels.settings import secrets_of
from hub.models import Channel

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

RECEIVING = Receiving(
    kept_headers=("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For"),
    refused=WebhookAnswer(401, "signature does not match"),
    log=logging.getLogger(__name__),
    refused_note="rejected a webhook for channel %s: bad signature or token",
    # 200 after the part-by-part store, so that Meta does not resend the batch for days.
    bad_data_note="webhook for channel %s did not store whole (%s); storing it part by part",
)


def verify(runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer:
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    with runtime.db.scope() as session:
        channel = session.scalar(select(Channel).where(Channel.key == key))
        token = None if channel is None else secrets_of(channel, runtime.vault).get("verify_token") or ""
    return answer_handshake(token, args)
