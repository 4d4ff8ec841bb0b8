"""Consent per contact and subscription type, with its source and time, recorded here;
the lower rooms read a contact's marketing word through hub.conversations.consent.

The latest word wins; marketing opt-outs are mirrored on contacts.opted_out_at, which the
outbound queue already refuses marketing templates by. Opting out also takes the
contact out of running broadcasts: their waiting recipients are skipped and a message
queued but not yet claimed by a sender is withdrawn.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.conversations.consent import OPTED_IN, OPTED_OUT
from hub.events import payloads
from hub.events.outbox import emit
from hub.models import Consent, Contact
from hub.models.broadcasts import SUBSCRIPTIONS


class ConsentProblem(ValueError):
    pass


def record(session: Session, contact: Contact, subscription: str, status: str, *, source: str,
           detail: str = "", at: datetime, now: datetime) -> bool:
    """Store the contact's word; returns whether it changed anything."""
    if subscription not in SUBSCRIPTIONS:
        raise ConsentProblem(f"subscription must be one of {', '.join(SUBSCRIPTIONS)}, not {subscription!r}")
    if status not in (OPTED_IN, OPTED_OUT):
        raise ConsentProblem(f"status must be opted_in or opted_out, not {status!r}")
    row = session.scalar(select(Consent).where(Consent.contact_id == contact.id,
                                               Consent.subscription == subscription))
    if row is not None and row.at > at:
        return False  # an older word arriving late never overrides a newer one
    changed = row is None or row.status != status
    if row is None:
        row = Consent(contact_id=contact.id, subscription=subscription, created_at=now)
        session.add(row)
    row.status, row.source, row.detail, row.at, row.updated_at = status, source, detail[:500], at, now
    if subscription == "marketing":
        contact.opted_out_at = at if status == OPTED_OUT else None
    session.flush()
    if changed and status == OPTED_OUT:
        withdraw_from_broadcasts(session, contact.id, subscription, now=now)
    return changed


def opt_out_everything(session: Session, contact: Contact, *, source: str, detail: str, at: datetime,
                       now: datetime) -> bool:
    """Both subscriptions, with one contact.opted_out event when anything changed."""
    changed = False
    for subscription in SUBSCRIPTIONS:
        changed = record(session, contact, subscription, OPTED_OUT, source=source, detail=detail, at=at,
                         now=now) or changed
    if changed:
        emit(session, "contact.opted_out", {"contact": payloads.contact(contact), "reason": detail,
                                            "source": source, "subscriptions": list(SUBSCRIPTIONS)},
             now=now, ordering_key=f"contact:{contact.id}")
    return changed


def opted_out_contacts(session: Session, contact_ids: Iterable[int], subscription: str) -> set[int]:
    """Which of these contacts said no to `subscription` (a marketing opt-out recorded only
    on the contact, from before consents existed, counts too)."""
    ids = list(set(contact_ids))
    out: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.update(session.scalars(select(Consent.contact_id).where(
            Consent.contact_id.in_(chunk), Consent.subscription == subscription, Consent.status == OPTED_OUT)))
        if subscription == "marketing":
            out.update(session.scalars(select(Contact.id).where(Contact.id.in_(chunk),
                                                                Contact.opted_out_at.is_not(None))))
    return out


def _contacts_of(session: Session, phones: Iterable[str]) -> dict[int, str]:
    """contact id -> E.164 number, for the numbers among `phones` that have a contact."""
    by_wa_id = {p.lstrip("+"): p for p in phones}
    wa_ids = list(by_wa_id)
    contact_of: dict[int, str] = {}
    for start in range(0, len(wa_ids), 500):
        for contact_id, wa_id in session.execute(select(Contact.id, Contact.wa_id).where(
                Contact.wa_id.in_(wa_ids[start:start + 500]))):
            contact_of[contact_id] = by_wa_id[wa_id]
    return contact_of


def opted_out_phones(session: Session, phones: Iterable[str], subscription: str) -> set[str]:
    """The E.164 numbers among `phones` whose contact opted out of `subscription`."""
    contact_of = _contacts_of(session, phones)
    return {contact_of[c] for c in opted_out_contacts(session, contact_of, subscription)}


def marketing_opted_in_phones(session: Session, phones: Iterable[str]) -> set[str]:
    """The numbers among `phones` whose latest recorded marketing word is an opt-in."""
    contact_of = _contacts_of(session, phones)
    ids = list(contact_of)
    out: set[str] = set()
    for start in range(0, len(ids), 500):
        out.update(contact_of[c] for c in session.scalars(select(Consent.contact_id).where(
            Consent.contact_id.in_(ids[start:start + 500]), Consent.subscription == "marketing",
            Consent.status == OPTED_IN)))
    return out


def skip_reasons(session: Session, phones: Iterable[str], subscription: str, *,
                 require_marketing_opt_in: bool) -> dict[str, str]:
    """Number -> why it must not get this subscription's messages: `opted_out`, or (with
    [broadcasts] require_marketing_opt_in, marketing only) `no_marketing_consent` for
    anyone without a recorded opt-in. The verdict and the pump ask the same question."""
    phones = list(phones)
    reasons = dict.fromkeys(opted_out_phones(session, phones, subscription), "opted_out")
    if require_marketing_opt_in and subscription == "marketing":
        opted_in = marketing_opted_in_phones(session, [p for p in phones if p not in reasons])
        reasons.update((p, "no_marketing_consent") for p in phones if p not in reasons and p not in opted_in)
    return reasons


def withdraw_from_broadcasts(session: Session, contact_id: int, subscription: str, *, now: datetime) -> int:
    """Skip the contact in broadcasts not yet sent to them; a queued message no sender
    has claimed is deleted with it (one being sent right now goes: it cannot be called back)."""
    from hub.broadcasts.recipients import withdraw  # the broadcast side of the same change

    return withdraw(session, contact_id, subscription, reason="opted_out", now=now)
