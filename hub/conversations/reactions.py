"""What the higher rooms (routing, automations) do when the lower ones change a
conversation: a customer's message starts one, an operator replies in one, one is
closed.

Ingest, sending and the conversation actions call the functions here; routing and
automations register their reactions once per process (hub.wiring.install_reactions,
called by the web app, the workers, the scheduler and the CLI). So the arrows run
one way: the lower rooms never import the rooms that build on them.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Started = Callable[..., None]  # (session, conversation_id, *, first_text, now)
Replied = Callable[..., None]  # (session, conversation_id, author_id, *, now)
Closed = Callable[..., None]  # (session, conversation, *, now)

_started: list[Started] = []
_replied: list[Replied] = []
_closed: list[Closed] = []
_warned: set[str] = set()


def _add(reactions: list[Any], reaction: Any) -> Any:
    if reaction not in reactions:  # installing twice reacts once
        reactions.append(reaction)
    return reaction


def on_started(reaction: Started) -> Started:
    return _add(_started, reaction)


def on_operator_reply(reaction: Replied) -> Replied:
    return _add(_replied, reaction)


def on_closed(reaction: Closed) -> Closed:
    return _add(_closed, reaction)


def _none_installed(what: str) -> None:
    """A process that never installed the reactions would route nothing and free no
    places: say so once rather than stay silent."""
    if what not in _warned:
        _warned.add(what)
        log.warning("no reaction installed for %s (hub.wiring.install_reactions was not called)", what)


def started(session: Session, conversation_id: int, *, first_text: str, now: datetime) -> None:
    """A customer's message has just opened the conversation (in ingest's transaction)."""
    if not _started:
        _none_installed("a started conversation")
    for reaction in _started:
        reaction(session, conversation_id, first_text=first_text, now=now)


def operator_replied(session: Session, conversation_id: int | None, author_id: int | None, *,
                     now: datetime) -> None:
    """A person queued a message in the conversation."""
    if conversation_id is None or author_id is None:
        return
    if not _replied:
        _none_installed("an operator's reply")
    for reaction in _replied:
        reaction(session, conversation_id, author_id, now=now)


def closed(session: Session, conversation: Any, *, now: datetime) -> None:
    """The conversation was closed (its conversation.closed is emitted already)."""
    if not _closed:
        _none_installed("a closed conversation")
    for reaction in _closed:
        reaction(session, conversation, now=now)
