"""The worker side of outgoing WhatsApp messages: claim, send under the number's limit,
record. The claim is the outbound ledger's (hub.channels.ledger), shared by every channel.
"""
from __future__ import annotations

import logging
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels.ledger import Claimed, claim
from hub.channels.whatsapp.outbound import window
from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.outbound.client import WhatsAppClient
from hub.channels.whatsapp.inbound.statuses import refresh
from hub.channels.whatsapp.errors import WhatsAppError, classify
from hub.platform.db import utcnow
from hub.shared.backoff import next_attempt_at
from hub.events.outbox import emit
from hub.shared.http import TimeoutSession
from hub.models import Channel, Contact, Conversation, Message, MessageStatus
from hub.platform.ratelimit import HeldWindow
from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
SEND_WINDOW = 1.01  # seconds: Meta's second, and its clock's grain


class Sender:
    """Sends queued messages for every channel; `run_once` is one round."""

    def __init__(self, runtime: Runtime, owner: str, *, clock: Callable[[], datetime] = utcnow,
                 rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep):
        self.runtime = runtime
        self.owner = owner
        self.clock = clock
        self.rng = rng
        self.http = TimeoutSession(runtime.config.delivery.http_timeout_seconds)
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="wa-send")
        self._sleep = sleep

    def run_once(self) -> int:
        db = self.runtime.db
        with db.scope() as session:
            channels = list(session.scalars(  # each kind's own sender sends its channels
                select(Channel).where(Channel.health != "unhealthy", Channel.kind == "whatsapp").order_by(Channel.id)))
            for channel in channels:
                session.expunge(channel)
        total = 0
        for channel in channels:
            with db.scope() as session:
                claimed = claim(session, channel.id, self.owner, now=self.clock(),
                                limit=self.runtime.config.whatsapp.send_batch_size,
                                lease_seconds=self.runtime.config.worker.lease_seconds)
            if claimed:
                self._send_all(channel, claimed)
                total += len(claimed)
        return total

    def _send_all(self, channel: Channel, claimed: list[Claimed]) -> None:
        """Send a claimed batch under the number's throughput, then record every answer in
        one transaction: a transaction per message was the sender's bound. A worker killed
        before that commit leaves messages whose status webhooks adopt them (adopt_orphan),
        as a kill between one send and its commit always did."""
        client = WhatsAppClient(endpoint(channel, self.runtime.vault, self.runtime.config), self.http)
        answers = self._paced(self._throughput(channel), claimed, client.send)
        try:
            with self.runtime.db.scope() as session:
                self._record(session, channel, answers)
        except Exception:
            # One bad answer must not cost the batch its record (their messages would be
            # sent again when the lease lapses): record them one by one.
            log.exception("channel %s: recording a batch of %d answers failed; one by one", channel.id,
                          len(answers))
            for answer in answers:
                with self.runtime.db.scope() as session:
                    self._record(session, channel, [answer])

    def _throughput(self, channel: Channel) -> HeldWindow:
        """The number's messages per second as Meta counts them (130429), shared by every
        thread and process: each send holds a slot from before it starts until a second
        after its answer, so no second of Meta's can hold more than the limit, however
        the requests travel and whoever retries what (hub.platform.ratelimit.HeldWindow).
        Its clock is the real one: it is Meta's second that counts."""
        hold = self.runtime.config.delivery.http_timeout_seconds + 2 * SEND_WINDOW
        return HeldWindow(self.runtime.db, f"channel:{channel.id}:sends", limit=max(1, int(channel.mps)),
                          window=SEND_WINDOW, hold=hold)

    def _paced(self, throughput: HeldWindow, claimed: list[Claimed],
               send_body: Callable[[dict], dict]) -> list[tuple[Claimed, dict | None, WhatsAppError | None]]:
        """Each claimed message sent as soon as a slot is free (the pool's threads in
        parallel), the answers in the claimed order. Slots of answered sends are released
        before waiting for more, so a batch larger than the free slots goes on from its
        own answers."""

        def send(item: Claimed):
            try:
                result, error = send_body(item.body), None
            except WhatsAppError as exc:
                result, error = None, exc
            except Exception as exc:  # the slot is released all the same; the batch stops here
                return item, None, exc, utcnow()
            return item, result, error, utcnow()

        futures: dict[Future, str] = {}
        released: set[Future] = set()

        def release(done) -> None:
            fresh = [f for f in done if f not in released]
            if fresh:
                throughput.release({futures[f]: f.result()[3] for f in fresh})
                released.update(fresh)

        started = 0
        try:
            while started < len(claimed):
                slots, wait = throughput.try_take(len(claimed) - started)
                for slot in slots:
                    futures[self._pool.submit(send, claimed[started])] = slot
                    started += 1
                if slots:
                    continue
                in_flight = [f for f in futures if f not in released]
                if in_flight:  # our own sends free slots first: wait for one of them, at most `wait`
                    done, _ = wait_futures(in_flight, timeout=wait, return_when=FIRST_COMPLETED)
                    release(done)
                else:  # past a window, the first slot is in flight elsewhere: look again soon
                    self._sleep(wait if wait <= SEND_WINDOW else 0.02)
        finally:
            release(wait_futures(list(futures)).done)
        answers = []
        throttled = False
        for future in futures:
            item, result, error, _ = future.result()
            if error is not None and not isinstance(error, WhatsAppError):
                raise error
            throttled = throttled or (error is not None and classify(error) == "throttled")
            answers.append((item, result, error))
        if throttled:
            throughput.penalise(1.0)  # Meta counts more than we do (another app on the number): hold back
        return answers

    def _record(self, session: Session, channel: Channel,
                answers: list[tuple[Claimed, dict | None, WhatsAppError | None]]) -> None:
        ids = [item.message_id for item, _, _ in answers]
        messages = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
        conversation_ids = {m.conversation_id for m in messages.values()}
        conversations = {c.id: c for c in session.scalars(
            select(Conversation).where(Conversation.id.in_(conversation_ids)))}
        contact_ids = {c.contact_id for c in conversations.values()}
        # Held while recording: the identity map keeps unchanged objects only as long as someone does.
        contacts = list(session.scalars(select(Contact).where(Contact.id.in_(contact_ids))))
        wamids = [result["wa_message_id"] for _, result, _ in answers if result and result.get("wa_message_id")]
        with_statuses = set(session.scalars(select(MessageStatus.wa_message_id).where(
            MessageStatus.wa_message_id.in_(wamids)))) if wamids else set()
        with session.no_autoflush:  # the messages' UPDATEs go together at commit
            for item, result, error in answers:
                message = messages.get(item.message_id)
                if message is None or message.lease_owner != self.owner or message.status != "sending":
                    continue  # our lease lapsed and another worker took it
                if error is None:
                    self._accepted(session, message, item, result,
                                   statuses_waiting=result.get("wa_message_id") in with_statuses)
                else:
                    self._failed(session, channel, message, item, error)
        del contacts

    def _accepted(self, session: Session, message: Message, item: Claimed, result: dict, *,
                  statuses_waiting: bool) -> None:
        now = self.clock()
        conversation = session.get(Conversation, message.conversation_id)
        message.wa_message_id = result["wa_message_id"]
        message.status = "accepted"
        message.accepted_at = now
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code = message.error_title = None
        message.updated_at = now
        if message.type == "read":
            return
        fep_expires = window.fep_start_on_reply(conversation, now)
        if fep_expires is not None:
            conversation.fep_expires_at = fep_expires
        conversation.last_message_at = now
        if statuses_waiting:
            session.flush()
            refresh(session, message, now=now, runtime=self.runtime)  # statuses that outran us
        contact = session.get(Contact, conversation.contact_id)
        emit(session, "message.sent", {
            "conversation": payloads.conversation(session, conversation),
            "contact": payloads.contact(contact),
            "message": payloads.message(session, message),
        }, now=now, ordering_key=payloads.ordering_key(conversation))

    def _failed(self, session: Session, channel: Channel, message: Message, item: Claimed,
                error: WhatsAppError) -> None:
        now = self.clock()
        verdict = classify(error)
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code, message.error_title = error.code, str(error)[:2000]
        message.updated_at = now
        too_old = now - item.created_at > timedelta(seconds=self.runtime.config.delivery.max_age_seconds)
        if verdict in ("retry", "throttled", "pair_limit") and not too_old:
            message.status = "queued"
            if verdict == "throttled":
                delay = error.retry_after or 1.0 + (self.rng or random).random()
                message.next_attempt_at = now + timedelta(seconds=delay)
            elif verdict == "pair_limit":
                # Meta: wait 4^X seconds before writing to the same user again.
                message.next_attempt_at = now + timedelta(seconds=min(4 ** item.attempts, 3600))
            else:
                cfg = self.runtime.config.delivery
                message.next_attempt_at = next_attempt_at(
                    now, message.attempts, base=cfg.backoff_base_seconds, cap=cfg.backoff_max_seconds,
                    retry_at=now + timedelta(seconds=error.retry_after) if error.retry_after else None,
                    rng=self.rng)
            return
        message.status = "failed"
        message.failed_at = now
        if verdict == "window_closed":
            message.error_title = "window_closed: " + message.error_title
        if verdict == "token":
            fresh = session.get(Channel, channel.id)
            fresh.health = "unhealthy"
            fresh.health_message = f"the access token was refused: {error}; update it in the channel settings"
            log.error("channel %s: access token refused (%s)", channel.id, error.code)
        conversation = session.get(Conversation, message.conversation_id)
        if message.type == "read":
            return
        emit(session, "message.status", {
            "conversation_id": conversation.id, "contact_id": conversation.contact_id,
            "message": {"id": message.id, "wa_message_id": message.wa_message_id, "status": "failed",
                        "error": {"code": error.code, "title": error.title, "details": error.details},
                        "pricing": None},
        }, now=now, ordering_key=payloads.ordering_key(conversation))
