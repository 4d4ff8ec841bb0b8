"""Outgoing messages: queued in the caller's transaction, sent by workers.

Queueing checks everything the hub can know before the network: the 24-hour window for
free-form messages (refused with the templates that could be used instead), the
template and its parameters, marketing opt-outs. Sending happens in workers, one
message per conversation at a time (so a conversation's messages keep their order),
under the number's messages-per-second limit shared by every worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels.base import NotFound, OptedOut, SendRefused, TemplateRefused, WindowClosed
from hub.channels.whatsapp.templates import parameters as tpl
from hub.channels.whatsapp.outbound import window
from hub.channels.whatsapp.outbound.compose import Composed, compose, request_body
from hub.conversations.store import open_conversation, upsert_contact
from hub.events.outbox import emit
from hub.models import Channel, Contact, Conversation, Message, Template

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

__all__ = ["NotFound", "OptedOut", "Prepared", "SendRefused", "TemplateRefused", "WindowClosed", "prepare_template",
           "queue_message", "write_prepared"]


WRITE_CHUNK = 500  # messages a multi-row INSERT writes (its parameters stay within both databases' limits)


def template_choices(templates: list[Template]) -> list[dict[str, Any]]:
    return [{"name": t.name, "language": t.language, "category": t.category} for t in templates]


@dataclass(frozen=True)
class Target:
    channel: Channel
    contact: Contact
    conversation: Conversation
    started: bool


def _digits(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 6:
        raise SendRefused(f"{phone!r} is not a phone number")
    return digits


def resolve_target(session: Session, *, conversation_id: int | None, channel_id: int | None,
                   to: str | None, now: datetime) -> Target:
    if conversation_id is not None:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id}")
        channel = session.get(Channel, conversation.channel_id)
        contact = session.get(Contact, conversation.contact_id)
        if conversation.status != "open":
            # Writing to a closed conversation reopens the contact's conversation on that number.
            conversation, started = open_conversation(session, channel_id=channel.id, contact_id=contact.id,
                                                      now=now)
            return Target(channel, contact, conversation, started)
        return Target(channel, contact, conversation, False)
    if channel_id is None or not to:
        raise SendRefused("give conversation_id, or channel_id and to")
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"no channel with id {channel_id}")
    contact = upsert_contact(session, wa_id=_digits(to), user_id=None, now=now)
    conversation, started = open_conversation(session, channel_id=channel.id, contact_id=contact.id, now=now)
    return Target(channel, contact, conversation, started)


def queue_message(
    session: Session,
    *,
    kind: str,
    content: dict[str, Any] | None = None,
    template: tpl.TemplateInput | None = None,
    conversation_id: int | None = None,
    channel_id: int | None = None,
    to: str | None = None,
    reply_to: str | None = None,
    author_id: int | None = None,
    template_row: Template | None = None,
    due_at: datetime | None = None,
    now: datetime,
) -> Message:
    """`template_row`: the template already looked up by a caller queueing many messages
    of it (a broadcast slice), so it is not read again per message (it is read when it is
    not the one `template` names on this channel's account); `due_at`: when the sender may
    take the message (a paced broadcast), instead of now."""
    target = resolve_target(session, conversation_id=conversation_id, channel_id=channel_id, to=to, now=now)
    channel, contact, conversation = target.channel, target.contact, target.conversation
    template_text = ""
    if kind != "template":
        template_row = None
    else:
        template_row, content, template_text = _template_content(session, channel, contact, template, template_row)
    composed = compose(kind, content or {}, template_text=template_text)
    if composed.needs_window and not window.is_open(conversation, now):
        usable = template_choices(tpl.usable(session, channel.waba_id))
        closes = window.closes_at(conversation)
        when = f"closed at {payloads.iso(closes)}" if closes else "never opened (the customer has not written)"
        raise WindowClosed(f"the 24-hour customer service window {when}; only a template can be sent",
                           templates=usable)
    recipient = _recipient(contact)
    message = Message(**_row(conversation, composed, template_row, recipient=recipient, reply_to=reply_to,
                             author_id=author_id, due_at=due_at, now=now))
    session.add(message)
    session.flush()
    message.request = _request(composed, contact, recipient=recipient, reply_to=reply_to, message_id=message.id)
    if target.started:
        emit(session, "conversation.started", {"conversation": payloads.conversation(session, conversation),
                                               "contact": payloads.contact(contact)},
             now=now, ordering_key=payloads.ordering_key(conversation))
    return message


def _template_content(session: Session, channel: Channel, contact: Contact, template: tpl.TemplateInput | None,
                      template_row: Template | None) -> tuple[Template, dict[str, Any], str]:
    """The template's row, the message's content and its readable text, or why not."""
    if template is None:
        raise TemplateRefused("a template message needs template.name and template.language")
    if template_row is None or (template_row.waba_id, template_row.name, template_row.language) != (
            channel.waba_id, template.name, template.language):
        template_row = tpl.find(session, channel.waba_id, template.name, template.language)
    if template_row is None:
        raise TemplateRefused(
            f"no template {template.name!r} in {template.language!r} on this account; sync templates or "
            f"choose another", templates=template_choices(tpl.usable(session, channel.waba_id)))
    try:
        content = tpl.build(template_row, template)
    except tpl.TemplateProblem as exc:
        raise TemplateRefused(str(exc)) from None
    template_text = tpl.as_text(tpl.render(template_row, content))
    if (template_row.category or "").upper() == "MARKETING" and contact.opted_out_at is not None:
        raise OptedOut("this contact asked not to receive marketing messages")
    return template_row, content, template_text


def _recipient(contact: Contact) -> str | None:
    return f"+{contact.wa_id}" if contact.wa_id else contact.user_id


def _row(conversation: Conversation, composed: Composed, template_row: Template | None, *, recipient: str | None,
         reply_to: str | None, author_id: int | None, due_at: datetime | None, now: datetime) -> dict[str, Any]:
    """A queued outgoing message's columns (but its id and request)."""
    return dict(
        conversation_id=conversation.id, direction="out", type=composed.type, text=composed.text or None,
        payload={"content": composed.content}, status="queued", sent_at=now, reply_to=reply_to,
        author_id=author_id, recipient=recipient, attempts=0, next_attempt_at=due_at or now,
        template_name=template_row.name if template_row else None,
        template_language=template_row.language if template_row else None,
        template_category=template_row.category if template_row else None,
        created_at=now, updated_at=now,
    )


def _request(composed: Composed, contact: Contact, *, recipient: str | None, reply_to: str | None,
             message_id: int) -> dict[str, Any]:
    body = request_body(composed, to=recipient, reply_to=reply_to, callback_data=f"hub:{message_id}")
    if not contact.wa_id and composed.type != "read":
        body.pop("to", None)
        body["recipient"] = contact.user_id  # business-scoped user id (2026+)
    return body


@dataclass(frozen=True)
class Prepared:
    """A template message checked and composed for an open conversation, not yet written."""
    conversation: Conversation
    contact: Contact
    composed: Composed
    template_row: Template


def prepare_template(session: Session, *, channel: Channel, conversation: Conversation, contact: Contact,
                     template: tpl.TemplateInput, template_row: Template | None) -> Prepared:
    """queue_message's checks of a template message to an open conversation of `channel`,
    without writing it (SendRefused when it would be refused)."""
    template_row, content, text = _template_content(session, channel, contact, template, template_row)
    return Prepared(conversation, contact, compose("template", content, template_text=text), template_row)


def write_prepared(session: Session, prepared: list[tuple[Prepared, datetime]], *, now: datetime) -> list[int]:
    """Many prepared messages (each with its due time) written as queue_message writes
    one, in one multi-row INSERT (per WRITE_CHUNK); their ids in the same order.
    PostgreSQL draws the ids from the sequence first (one statement), so the requests,
    which carry the id, go in the INSERT; SQLite gives them back from it (a rowid table
    numbers a statement's rows in their order) and the requests are set after."""
    rows = []
    for item, due_at in prepared:
        recipient = _recipient(item.contact)
        rows.append((_row(item.conversation, item.composed, item.template_row, recipient=recipient, reply_to=None,
                          author_id=None, due_at=due_at, now=now), item, recipient))
    table = Message.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    ids: list[int] = []
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start:start + WRITE_CHUNK]
        if postgres:
            drawn = list(session.scalars(select(func.nextval(func.pg_get_serial_sequence("messages", "id")))
                                         .select_from(func.generate_series(1, len(chunk)))))
            session.execute(insert(table).values([
                {**values, "id": message_id,
                 "request": _request(item.composed, item.contact, recipient=recipient, reply_to=None,
                                     message_id=message_id)}
                for message_id, (values, item, recipient) in zip(drawn, chunk)]))
        else:
            drawn = sorted(session.scalars(insert(table).values([values for values, _, _ in chunk])
                                           .returning(table.c.id)))
            session.execute(update(table).where(table.c.id == bindparam("message_id"))
                            .values(request=bindparam("body")), [
                {"message_id": message_id, "body": _request(item.composed, item.contact, recipient=recipient,
                                                            reply_to=None, message_id=message_id)}
                for message_id, (_, item, recipient) in zip(drawn, chunk)])
        ids += drawn
    return ids
