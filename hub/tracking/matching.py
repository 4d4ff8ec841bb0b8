"""Attribution of a new conversation from its first message, in the ingest transaction.

A visit's code is claimed with one conditional UPDATE (`... WHERE live_code = :code`):
when two conversations quote the same code at once, the database lets exactly one of
them change the row; the other sees nothing to claim and falls back to the next
candidate, the ad referral, or "direct". LeadAttribution's unique keys back that up.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hub.events import payloads
from hub.tracking.attribution import UTM_FIELDS, attribute, from_tracked_link
from hub.models import Conversation, LeadAttribution, Message, TrackedLink, Visit
from hub.tracking.codes import Candidate, candidates, clean_text, is_visit_code, static_code_problem

DEFAULT_WINDOW = timedelta(days=7)
VISIT_FIELDS = UTM_FIELDS + ("gclid", "yclid", "fbclid", "ga_client_id", "ym_uid", "roistat_visit", "landing_page",
                                 "referrer")


@dataclass(frozen=True)
class Claimed:
    link: TrackedLink
    visit: Visit | None  # None: the link's static code
    candidate: Candidate
    clean_text: str


def link_data(link: TrackedLink) -> dict[str, Any]:
    return {"id": link.id, "slug": link.slug, "campaign": link.campaign,
            **{f: getattr(link, f) for f in UTM_FIELDS}}


def visit_data(visit: Visit) -> dict[str, Any]:
    return {"id": visit.id, "visited_at": payloads.iso(visit.visited_at),
            **{f: getattr(visit, f) for f in VISIT_FIELDS}}


def _claim_visit(session: Session, found: list[Candidate], *, channel_id: int, at: datetime,
                 window: timedelta, now: datetime) -> Claimed | None:
    codes = sorted({c.code for c in found if is_visit_code(c.code)})
    if not codes:
        return None
    cutoff = at - window
    rows = session.execute(
        select(Visit, TrackedLink).join(TrackedLink, TrackedLink.id == Visit.link_id)
        .where(Visit.live_code.in_(codes), Visit.visited_at >= cutoff, TrackedLink.channel_id == channel_id)
    ).all()
    by_code = {visit.live_code: (visit, link) for visit, link in rows}
    for candidate in found:
        if candidate.code not in by_code:
            continue
        visit, link = by_code.pop(candidate.code)
        claimed = session.execute(
            update(Visit)
            .where(Visit.id == visit.id, Visit.live_code == candidate.code, Visit.visited_at >= cutoff)
            .values(live_code=None, matched_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            set_committed_value(visit, "live_code", None)
            set_committed_value(visit, "matched_at", now)
            return Claimed(link, visit, candidate, "")
    return None


def _static(session: Session, found: list[Candidate], *, channel_id: int) -> Claimed | None:
    codes = sorted({c.code for c in found if static_code_problem(c.code) is None})
    if not codes:
        return None
    links = {link.static_code: link for link in session.scalars(select(TrackedLink).where(
        TrackedLink.static_code.in_(codes), TrackedLink.active.is_(True), TrackedLink.channel_id == channel_id))}
    for candidate in found:
        if candidate.code in links:
            return Claimed(links[candidate.code], None, candidate, "")
    return None


def claim_code(session: Session, text: str | None, *, channel_id: int, at: datetime,
               window: timedelta = DEFAULT_WINDOW, now: datetime) -> Claimed | None:
    """The tracked link (and visit) whose code `text` quotes, claimed for good; a live
    visit code wins over a static code. `at` is when the user sent the message."""
    found = candidates(text)
    if not found:
        return None
    claimed = _claim_visit(session, found, channel_id=channel_id, at=at, window=window, now=now) or \
        _static(session, found, channel_id=channel_id)
    if claimed is None:
        return None
    span = (claimed.candidate.start, claimed.candidate.end)
    return Claimed(claimed.link, claimed.visit, claimed.candidate,
                   clean_text(text or "", span, claimed.link.text_template))


def attribute_first_message(session: Session, conversation: Conversation, message: Message, *,
                            referral: dict[str, Any] | None, window: timedelta = DEFAULT_WINDOW,
                            now: datetime, code_text: str | None = None) -> dict[str, Any]:
    """The lead source of a conversation started by `message`: a tracked link's code in
    its text (or in `code_text`, e.g. an Instagram link's ref), else the ad referral,
    else direct. A match is recorded (LeadAttribution) and noted on the message's
    payload with the clean text."""
    claimed = claim_code(session, message.text if code_text is None else code_text,
                         channel_id=conversation.channel_id, at=message.sent_at, window=window, now=now)
    if claimed is None:
        return attribute(referral=referral)
    code = claimed.candidate.code
    session.add(LeadAttribution(conversation_id=conversation.id, link_id=claimed.link.id,
                                visit_id=claimed.visit.id if claimed.visit else None, code=code,
                                attributed_at=now))
    message.payload = {**(message.payload or {}),
                       "tracking": {"code": code, "link": claimed.link.slug, "clean_text": claimed.clean_text}}
    return from_tracked_link(link_data(claimed.link), visit_data(claimed.visit) if claimed.visit else None,
                             code=code, clean_text=claimed.clean_text, referral=referral)
