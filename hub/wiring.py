"""The higher rooms' reactions to what the lower rooms do to a conversation, installed
once per process (the web app, the workers, the scheduler, the CLI): routing routes a
started chat, gives an offered chat to the operator who replies and frees a closed
chat's place; automations step their bot aside when a person writes; broadcasts apply
a customer's stop and start keywords and marketing preference on ingest."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.automations.runtime import pause_for_operator
from hub.broadcasts import inbound as broadcast_keywords
from hub.channels import customer_words
from hub.conversations import reactions as conversation_reactions
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
    customer_words.install(customer_words.Handling(
        keyword_of=broadcast_keywords.keyword_of, customer_text=broadcast_keywords.customer_text,
        marketing_preference=broadcast_keywords.marketing_preference))
