"""Each template message's funnel (docs/metrics.md, template funnels), kept in
report_template_messages by the reports' pass, so a period's funnels add up one narrow
row per message instead of probing every template message's contact for a reply.

A reply is a customer message of the same contact on the same channel, in any of its
conversations (a message after a close opens a new one), after the template message
was accepted (or queued, before WhatsApp said so) and at most REPLY_WINDOW later. What
a row holds moves with an event of a conversation of that contact (the customer's
message, the template's sending and statuses, an assignment, a lead's source), so the
pass computes again, whole, the rows of every template message of the contacts of the
conversations it computes (mark()); a contact holds a few template messages, so that
is a handful of rows per conversation. rebuild() computes every row at once (`hub
reports rebuild`). per_message() is also the funnels' message-by-message check.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import Interval, and_, case, delete, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from hub.models import BroadcastRecipient, Conversation, Message, ReportFact, ReportTemplateMessage

# WhatsApp's customer service window: a customer who writes within it answered the template.
REPLY_WINDOW = timedelta(hours=24)
COLUMNS = ("message_id", "sent_at", "template_name", "template_language", "template_category", "broadcast_id",
           "currency", "channel_id", "team_id", "assignee_id", "source", "sent", "delivered", "read", "replied",
           "failed", "cost")


def reply_exists(session: Session, m: Any, c: Any, window: timedelta) -> Any:
    """A customer message of c's contact and channel within `window` after m was sent."""
    i, ic = aliased(Message), aliased(Conversation)
    at = func.coalesce(m.accepted_at, m.sent_at)
    if session.get_bind().dialect.name == "postgresql":
        before_end = i.sent_at <= at + literal(window, Interval())
    else:  # SQLite keeps datetimes as text: compare as Julian days
        before_end = func.julianday(i.sent_at) <= func.julianday(at) + window.total_seconds() / 86400
    return exists().where(ic.contact_id == c.contact_id, ic.channel_id == c.channel_id,
                          i.conversation_id == ic.id, i.direction == "in", i.sent_at > at, before_end)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def per_message(session: Session, window: timedelta, *where: Any) -> Any:
    """The rows of report_template_messages (COLUMNS) for the template messages `where`
    selects, checked one by one: a subquery."""
    m, c, r = Message, Conversation, BroadcastRecipient
    sent = or_(m.accepted_at.is_not(None), m.delivered_at.is_not(None), m.read_at.is_not(None))
    failed = m.status == "failed"
    raw = (select(m.id.label("message_id"), m.sent_at, m.template_name, m.template_language, m.template_category,
                  r.broadcast_id, m.currency, c.channel_id, c.team_id, c.assignee_id,
                  func.coalesce(ReportFact.source, "").label("source"), _flag(sent).label("sent"),
                  _flag(m.delivered_at.is_not(None)).label("delivered"), _flag(m.read_at.is_not(None)).label("read"),
                  _flag(and_(sent, ~failed, reply_exists(session, m, c, window))).label("replied"),
                  _flag(failed).label("failed"), m.cost)
           .join(c, c.id == m.conversation_id).outerjoin(r, r.message_id == m.id)
           .outerjoin(ReportFact, ReportFact.conversation_id == c.id)
           .where(m.direction == "out", m.template_name.is_not(None), *where))
    # Materialized, so the reply check runs once per message (inlined, PostgreSQL
    # evaluated it once for each stage that reads it).
    one = raw.cte("per_message").prefix_with("MATERIALIZED", dialect="postgresql")
    most = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    # Each stage counts the messages that got at least that far: a reply was also delivered and read.
    staged = {"delivered": most(one.c.delivered, one.c.read, one.c.replied), "read": most(one.c.read, one.c.replied)}
    return select(*[staged[name].label(name) if name in staged else one.c[name] for name in COLUMNS]).subquery()


def _write(session: Session, *where: Any) -> None:
    chosen = (select(Message.id).join(Conversation, Conversation.id == Message.conversation_id)
              .where(Message.direction == "out", Message.template_name.is_not(None), *where))
    session.execute(delete(ReportTemplateMessage).where(ReportTemplateMessage.message_id.in_(chosen)))
    rows = per_message(session, REPLY_WINDOW, *where)
    session.execute(ReportTemplateMessage.__table__.insert().from_select(list(COLUMNS), select(rows)))


def mark(session: Session, conversation_ids: Iterable[int]) -> None:
    """Compute again the rows of every template message of these conversations' contacts."""
    ids = tuple(conversation_ids)
    if not ids:
        return
    contacts = select(Conversation.contact_id).where(Conversation.id.in_(ids)).distinct()
    _write(session, Conversation.contact_id.in_(contacts))


def rebuild(session: Session) -> None:
    """Every template message's row, from nothing."""
    session.execute(delete(ReportTemplateMessage))
    _write(session)
