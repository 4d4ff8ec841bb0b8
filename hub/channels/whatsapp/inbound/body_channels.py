"""The channels one webhook body names, each looked up once: shared by the message path
(ingest) and the account events (templates, numbers, errors) of the same body."""
from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Channel


class ChannelRef(Protocol):
    """What a message needs of its channel: the id, and what event payloads show."""

    id: int
    name: str
    display_number: str
    phone_number_id: str


class Channels:
    """Channels of one webhook body, looked up once each."""

    def __init__(self, session: Session, known: ChannelRef | None = None):
        self.session = session
        self._by_number: dict[str, Channel | None] = {}
        self._refs: dict[str, ChannelRef | None] = {}
        if known is not None:  # the channel whose URL received the webhook
            self._refs[known.phone_number_id] = known
            if isinstance(known, Channel):
                self._by_number[known.phone_number_id] = known

    def by_number(self, phone_number_id: str | None) -> Channel | None:
        """The channel as an ORM object, for the events that change it."""
        if not phone_number_id:
            return None
        if phone_number_id not in self._by_number:
            self._by_number[phone_number_id] = self.session.scalar(
                select(Channel).where(Channel.phone_number_id == phone_number_id))
        return self._by_number[phone_number_id]

    def for_messages(self, phone_number_id: str | None) -> ChannelRef | None:
        """The channel a message came to: usually the one the route has already read."""
        if not phone_number_id:
            return None
        if phone_number_id not in self._refs:
            self._refs[phone_number_id] = self.by_number(phone_number_id)
        return self._refs[phone_number_id]

    def of_account(self, waba_id: str) -> list[Channel]:
        return list(self.session.scalars(select(Channel).where(Channel.waba_id == waba_id).order_by(Channel.id)))
