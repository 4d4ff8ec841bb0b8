"""The off-hours auto-reply: through the channel contract, only where the channel's
window lets free text go (a closed window is not worth a paid template)."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from hub.channels import registry
from hub.channels.base import Outgoing, SendRefused
from hub.channels.sending import queue
from hub.models import Channel, Conversation

log = logging.getLogger(__name__)


def off_hours_reply(session: Session, conversation: Conversation, text: str, now: datetime) -> bool:
    """Queue `text` as an automated reply; False when the channel would not take it."""
    kind = registry.of(session.get(Channel, conversation.channel_id))
    if not kind.window(conversation, now).open:
        return False
    try:
        with session.begin_nested():
            message = queue(session, Outgoing(kind="text", content={"body": text}, conversation_id=conversation.id),
                            now=now)
            message.payload = {**(message.payload or {}), "automated": "off_hours"}
    except SendRefused as exc:
        log.info("off-hours reply to conversation %s not sent: %s", conversation.id, exc.code)
        return False
    return True
