"""The higher rooms' reactions to what the lower rooms do to a conversation, installed
once per process (the web app, the workers, the scheduler, the CLI): routing routes a
started chat, gives an offered chat to the operator who replies and frees a closed
chat's place; automations step their bot aside when a person writes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.conversations import reactions as conversation_reactions
from hub.automations.runtime import pause_for_operator
from hub.routing import hooks as routing_hooks


def _bot_steps_aside(session: Session, conversation_id: int, author_id: int, *, now: datetime) -> None:
    pause_for_operator(session, conversation_id, now=now)  # a person took over from the bot


def install_reactions() -> None:
    """Idempotent; the order is the order they run in (routing claims an offered chat
    before the bot is paused)."""
    conversation_reactions.on_started(routing_hooks.conversation_started)
    conversation_reactions.on_operator_reply(routing_hooks.human_reply)
    conversation_reactions.on_operator_reply(_bot_steps_aside)
    conversation_reactions.on_closed(routing_hooks.conversation_closed)
