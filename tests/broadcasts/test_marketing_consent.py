"""[broadcasts] require_marketing_opt_in: a marketing broadcast skips everyone without a
recorded marketing opt-in (`no_marketing_consent`), in the verdict and in the pump;
opt-outs stay `opted_out`; utility templates and the default (off) are not held back."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.broadcasts import audiences, consent, lifecycle, verdict
from hub.broadcasts.pump import BroadcastPump
from hub.channels.whatsapp.billing.rate_card import rate_card_for
from hub.platform.db import utcnow
from hub.models import Audience, BroadcastRecipient, Contact, Template
from tests.conftest import make_config
from tests.support.whatsapp import WABA_ID, make_channel

OPTED_IN, OPTED_OUT, SILENT, UNKNOWN = "+4915112345001", "+4915112345002", "+4915112345003", "+4915112345004"
CSV = f"phone,first_name\n{OPTED_IN},Ana\n{SILENT},Bob\n{UNKNOWN},Eve\n{OPTED_OUT},Oleg\n".encode()


@pytest.fixture
def config(database_url, tmp_path):
    return make_config(database_url, tmp_path, broadcasts__require_marketing_opt_in=True)


@pytest.fixture
def world(runtime):
    """A channel, a marketing and a utility template, and three known contacts: one opted
    in to marketing, one opted out, one who never said (UNKNOWN has no contact at all)."""
    channel_id, _ = make_channel(runtime)
    now = utcnow()
    with runtime.db.scope() as s:
        for name, category in (("promo", "MARKETING"), ("notice", "UTILITY")):
            s.add(Template(waba_id=WABA_ID, name=name, language="en", status="APPROVED", category=category,
                           components=[{"type": "BODY", "text": "Hi {{1}}"}]))
        contacts = {}
        for phone in (OPTED_IN, OPTED_OUT, SILENT):
            contacts[phone] = Contact(wa_id=phone[1:], phone=phone, name="x", created_at=now, updated_at=now)
            s.add(contacts[phone])
        s.flush()
        consent.record(s, contacts[OPTED_IN], "marketing", consent.OPTED_IN, source="keyword", at=now, now=now)
        consent.record(s, contacts[OPTED_OUT], "marketing", consent.OPTED_OUT, source="keyword", at=now, now=now)
        # an opt-in to utility messages is no opt-in to marketing
        consent.record(s, contacts[SILENT], "utility", consent.OPTED_IN, source="api", at=now, now=now)
        audience = audiences.create_from_csv(s, name="list", data=CSV, now=now, subscription="utility")
        return {"channel_id": channel_id, "audience_id": audience.id}


def the_verdict(runtime, world, template_name, *, required):
    with runtime.db.scope() as s:
        template = s.scalar(select(Template).where(Template.name == template_name))
        audience = s.get(Audience, world["audience_id"])
        subscription = "marketing" if template.category == "MARKETING" else "utility"
        return verdict.verdict(s, template=template, spec=[{"column": "first_name"}],
                               members=audiences.members(s, audience, now=utcnow()), refused=[],
                               subscription=subscription, card=rate_card_for(runtime.config),
                               require_marketing_opt_in=required, now=utcnow())


def test_the_verdict_counts_no_marketing_consent_apart_from_opt_outs(client, admin_headers, runtime, world):
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        "channel_id": world["channel_id"], "audience_id": world["audience_id"], "template_name": "promo",
        "template_language": "en", "variables": [{"column": "first_name"}]})
    assert r.status_code == 200, r.json
    assert r.json["would_send"] == 1 and r.json["preview"][0]["phone"] == OPTED_IN
    assert r.json["skipped_by_reason"] == {"no_marketing_consent": 2, "opted_out": 1}
    utility = the_verdict(runtime, world, "notice", required=True)
    assert utility["would_send"] == 4 and utility["skipped_by_reason"] == {}
    off = the_verdict(runtime, world, "promo", required=False)
    assert off["would_send"] == 3 and off["skipped_by_reason"] == {"opted_out": 1}


def test_the_pump_skips_them_and_queues_only_the_opted_in(runtime, world):
    now = utcnow()
    with runtime.db.scope() as s:
        b = lifecycle.create(s, name="offer", channel_id=world["channel_id"], audience_id=world["audience_id"],
                             template_name="promo", template_language="en", variables=[{"column": "first_name"}],
                             now=now)
        lifecycle.start(s, b.id, now=now)
        broadcast_id = b.id
    with runtime.db.scope() as s:  # the opt-in is asked when sending, not when made: a later opt-in counts
        contact = s.scalar(select(Contact).where(Contact.phone == SILENT))
        consent.record(s, contact, "marketing", consent.OPTED_IN, source="keyword", at=utcnow(), now=utcnow())
    BroadcastPump(runtime, step_seconds=0).run_once()
    with runtime.db.scope() as s:
        got = {r.phone: (r.status, r.reason) for r in s.scalars(
            select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id))}
    assert got == {OPTED_IN: ("queued", None), SILENT: ("queued", None),
                   UNKNOWN: ("skipped", "no_marketing_consent"), OPTED_OUT: ("skipped", "opted_out")}


def test_off_by_default():
    from hub.platform.config import load_config

    assert load_config(data={}, environ={}).broadcasts.require_marketing_opt_in is False
