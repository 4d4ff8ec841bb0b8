"""The connector on its own: settings, deliver() paths, check, choices, preview, benchkit."""
from __future__ import annotations

import pytest

from connectors.bitrix24 import benchkit
from connectors.bitrix24.sync import TRY_MARKER
from hub.crm.store import InvalidConnector, build_connector, create_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from tests.connectors.bitrix24.conftest import oauth_settings, webhook_settings
from tests.connectors.bitrix24.factory import hub_event

_n = [0]


def make(runtime, settings):
    _n[0] += 1
    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind="bitrix24", name=f"b24-{_n[0]}", settings=settings,
                                  now=utcnow())
        session.flush()
        return build_connector(runtime.db, runtime.vault, session.get(ConnectorRecord, record.id),
                               clock=utcnow, http_timeout=2)


# -- settings -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad, field", [
    ({"webhook_url": "https://other.bitrix24.com/rest/1/abc/"}, "webhook_url"),
    ({"webhook_url": "https://x/rest/abc/"}, "webhook_url"),
    ({"stage_rules": "WON => thanks"}, "stage_rules"),
    ({"stage_rules": "WON -> thanks | contact.name"}, "stage_rules"),
    ({"utm_mapping": "UTM_SOURCE=utm_sauce"}, "utm_mapping"),
    ({"utm_mapping": "TITLE=utm_source"}, "utm_mapping"),
    ({"operator_map": "olga=5"}, "operator_map"),
    ({"title_template": "{nope}"}, "title_template"),
    ({"deal_category_id": 1, "deal_stage_id": "NEW"}, "deal_stage_id"),
    ({"auth_mode": "oauth", "webhook_url": ""}, "client_id"),
])
def test_settings_refuse_bad_input_naming_the_field(runtime, portal, bad, field):
    settings = webhook_settings(portal)
    settings["portal_url"] = "https://x" if field == "webhook_url" and "x/rest" in str(bad) else settings["portal_url"]
    with pytest.raises(InvalidConnector) as err:
        make(runtime, {**settings, **bad})
    assert field in err.value.errors


def test_secrets_are_marked_secret():
    from connectors.base import secret_fields
    from connectors.bitrix24.settings import Bitrix24Settings
    assert secret_fields(Bitrix24Settings) == {"webhook_url", "client_secret", "access_token", "refresh_token",
                                               "application_token", "authorization_code"}


# -- deliver --------------------------------------------------------------------------------
def test_an_existing_crm_contact_is_found_by_phone_and_its_open_deal_reused(runtime, portal):
    p = portal.portal
    cid = p.contact_add({"fields": {"NAME": "Known", "PHONE": [{"VALUE": "+1 (555) 700-0003"}]}}).result
    other = p.contact_add({"fields": {"NAME": "Other", "PHONE": [{"VALUE": "+15557000004"}]}}).result
    deal = p._entity_add("deal", {"fields": {"TITLE": "Open already", "CONTACT_ID": cid}}).result
    b24 = make(runtime, webhook_settings(portal))
    outcomes = b24.deliver([hub_event("conversation.started", i) for i in range(3, 8)])
    assert [o.status for o in outcomes] == ["done"] * 5
    assert outcomes[0].response == {"contact_id": str(cid), "deal_id": str(deal)}
    assert outcomes[1].response["contact_id"] == str(other)
    assert len(p.contacts) == 5 and len(p.deals) == 5  # 3 new contacts, 4 new deals + the reused one


def test_reuse_never_makes_a_deal_per_conversation(runtime, portal):
    p = portal.portal
    cid = p.contact_add({"fields": {"NAME": "Known", "PHONE": [{"VALUE": "+15557000003"}]}}).result
    p._entity_add("deal", {"fields": {"TITLE": "Open already", "CONTACT_ID": cid}})
    b24 = make(runtime, webhook_settings(portal, reuse="never"))
    assert b24.deliver([hub_event("conversation.started", 3)])[0].status == "done"
    assert len(p.deals) == 2


def test_a_retry_finds_what_an_interrupted_try_created(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    started = hub_event("conversation.started", 1)
    msg = hub_event("message.received", 1, n=1)
    assert b24.deliver([started])[0].status == "done"
    assert b24.deliver([msg])[0].status == "done"
    # the links were lost (as if the worker died before storing them); the markers remain
    from sqlalchemy import delete
    from hub.models import CrmLink
    with runtime.db.scope() as session:
        session.execute(delete(CrmLink).where(CrmLink.entity_type != TRY_MARKER))
    before = portal.counts()
    assert [o.status for o in b24.deliver([msg])] == ["done"]
    assert portal.counts() == before  # found the contact by phone, the deal by ORIGIN_ID, the comment by text


def test_username_only_contacts_are_found_again_by_origin(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    event = hub_event("conversation.started", 2, phone=False)
    assert b24.deliver([event])[0].status == "done"
    from sqlalchemy import delete
    from hub.models import CrmLink
    with runtime.db.scope() as session:
        session.execute(delete(CrmLink).where(CrmLink.entity_type == "contact"))
    assert b24.deliver([hub_event("conversation.started", 2, phone=False, attempt=2)])[0].status == "done"
    assert portal.counts()["contacts"] == 1 and portal.counts()["deals"] == 1


def test_assignment_close_and_attribution_update_the_deal(runtime, portal):
    b24 = make(runtime, webhook_settings(portal, operator_map="olga@example.com=5", close_stage_id="WON"))
    b24.deliver([hub_event("conversation.started", 1, source=None)])
    deal = next(iter(portal.portal.deals.values()))
    assert deal["UTM_SOURCE"] is None and deal["ASSIGNED_BY_ID"] == "1"
    outcomes = b24.deliver([hub_event("lead.attributed", 1, source={"kind": "tracked_link", "utm_source": "fb",
                                                                    "utm_medium": "social", "campaign": "Autumn"})])
    assert outcomes[0].status == "done"
    assert (deal["UTM_SOURCE"], deal["UTM_MEDIUM"], deal["SOURCE_DESCRIPTION"]) == ("fb", "social", "WhatsApp link: Autumn")
    b24.deliver([hub_event("conversation.assigned", 1)])
    assert deal["ASSIGNED_BY_ID"] == "5"
    b24.deliver([hub_event("conversation.closed", 1)])
    assert (deal["STAGE_ID"], deal["CLOSED"]) == ("WON", "Y")


def test_timeline_setting_filters_messages(runtime, portal):
    b24 = make(runtime, webhook_settings(portal, timeline="inbound"))
    b24.deliver([hub_event("conversation.started", 1)])
    outcomes = b24.deliver([hub_event("message.sent", 1, n=2)]) + b24.deliver([hub_event("message.received", 1, n=3)])
    assert [o.status for o in outcomes] == ["done", "done"]
    assert [c["COMMENT"].split("\n")[1] for c in portal.portal.comments.values()] == ["Message 3 of conversation 1"]


def test_revoked_webhook_waits_and_marks_the_connector_unhealthy(runtime, portal):
    b24 = make(runtime, webhook_settings(portal, webhook_url=f"{portal.base_url}/rest/1/revoked0code/"))
    outcomes = b24.deliver([hub_event("conversation.started", 1)])
    assert outcomes[0].status == "wait" and "INVALID_CREDENTIALS" in outcomes[0].error
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, b24.ctx.connector_id)
        assert record.health == "unhealthy" and "webhook" in record.health_message
        assert "revoked0code" not in record.health_message


def test_a_blocked_method_retries_at_the_portal_reset(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    b24.deliver([hub_event("conversation.started", 1)])
    portal.portal.block_method("crm.timeline.comment.add", 120)
    outcomes = b24.deliver([hub_event("message.received", 1, n=1), hub_event("conversation.started", 2)])
    assert outcomes[0].status == "retry" and "OPERATION_TIME_LIMIT" in outcomes[0].error
    assert outcomes[0].retry_at is not None and (outcomes[0].retry_at - utcnow()).total_seconds() > 60
    assert outcomes[1].status == "done"


def test_oauth_connector_refreshes_and_stores_rotated_tokens(runtime, portal):
    b24 = make(runtime, oauth_settings(portal))
    portal.portal.expire_access_token()
    assert b24.deliver([hub_event("conversation.started", 1)])[0].status == "done"
    from hub.crm.store import full_settings
    with runtime.db.scope() as session:
        stored = full_settings(session.get(ConnectorRecord, b24.ctx.connector_id), runtime.vault)
    assert stored["access_token"] == portal.portal.access_token
    assert stored["refresh_token"] == portal.portal.refresh_token


def test_unhandled_and_malformed_events(runtime, portal):
    from connectors.base import HubEvent
    from tests.connectors.bitrix24.factory import T0
    b24 = make(runtime, webhook_settings(portal))
    bad = HubEvent(id="x", type="message.received", version=1, occurred_at=T0, data={"contact": {"id": 1}})
    status = HubEvent(id="y", type="message.status", version=1, occurred_at=T0, data={})
    outcomes = b24.deliver([bad, status])
    assert outcomes[0].status == "dead" and "conversation" in outcomes[0].error
    assert outcomes[1].status == "done"


# -- admin -----------------------------------------------------------------------------------
def test_check_reports_the_user_and_bad_stages(runtime, portal):
    ok = make(runtime, webhook_settings(portal, deal_category_id=1, deal_stage_id="C1:NEW")).check()
    assert ok.ok and "Anna Admin" in ok.message
    bad = make(runtime, webhook_settings(portal, close_stage_id="NOPE")).check()
    assert not bad.ok and "NOPE" in bad.message
    revoked = make(runtime, webhook_settings(portal, webhook_url=f"{portal.base_url}/rest/1/zzz/")).check()
    assert not revoked.ok and "INVALID_CREDENTIALS" in revoked.message


def test_choices_come_from_the_portal(runtime, portal):
    choices = make(runtime, webhook_settings(portal, deal_category_id=1)).choices()
    assert ("1", "Wholesale") in choices["deal_category_id"]
    assert ("C1:WON", "Shipped") in choices["deal_stage_id"]
    assert ("IN_PROCESS", "In progress") in choices["lead_status_id"]
    assert ("5", "Olga Sales") in choices["default_assigned_by_id"]
    assert ("WEB", "Web") in choices["source_id"]


def test_preview_sends_nothing_and_shows_the_batches(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    requests = b24.preview([hub_event("conversation.started", i) for i in range(30)]
                           + [hub_event("message.received", 40, n=1)])
    assert portal.stats()["requests"] == 0
    assert [len(r["body"]["cmd"]) for r in requests] == [2, 31, 32]
    lookup = requests[0]["body"]["cmd"]["p0"]
    assert lookup.startswith("crm.duplicate.findbycomm?entity_type=CONTACT&type=PHONE&values[0]=%2B15557000000")
    assert "fields[CONTACT_ID]=%3CID%20from%20c1000%3E" in requests[2]["body"]["cmd"]["d5000"]
    assert "%24result%5Bd5040%5D" in requests[2]["body"]["cmd"]["m100401"]


def test_benchkit_floor_and_settings():
    # 10000 writes + 100 phone lookups = 202 batches; 50 go at once, then 2 a second.
    assert benchkit.floor(2000, 3) == (202, 76.0)
    assert benchkit.floor(1, 0) == (1, 0.5)
    with benchkit.start_emulator() as handle:
        settings = benchkit.connector_settings(handle.base_url)
        assert settings["webhook_url"].startswith(handle.base_url + "/rest/1/")
        assert handle.counts() == {"contacts": 0, "deals": 0, "notes": 0}
        assert handle.stats()["requests"] == 0 and handle.stats()["rate_limited"] == 0


def test_preview_of_updates_to_a_linked_deal(runtime, portal):
    b24 = make(runtime, webhook_settings(portal, operator_map="olga@example.com=5", close_stage_id="WON"))
    b24.deliver([hub_event("conversation.started", 1)])
    sent = portal.stats()["requests"]
    deal = next(iter(portal.portal.deals))
    requests = b24.preview([hub_event("conversation.assigned", 1)])
    assert requests == [{"method": "POST", "path": "/rest/batch.json", "body": {"halt": 0, "cmd": {
        "u5001": f"crm.deal.update?id={deal}&fields[ASSIGNED_BY_ID]=5"}}}]
    assert portal.stats()["requests"] == sent


def test_an_sla_breach_becomes_one_to_do_on_the_deal_for_the_operator(runtime, portal):
    p = portal.portal
    b24 = make(runtime, webhook_settings(portal, operator_map="olga@example.com=5"))
    breach = hub_event("sla.breached", 4)
    assert b24.deliver([hub_event("conversation.started", 4)])[0].status == "done"
    (outcome,) = b24.deliver([breach])
    assert outcome.status == "done" and outcome.response["task_id"]
    (todo,) = p.activities.values()
    deal = next(iter(p.deals.values()))
    assert (todo["OWNER_TYPE_ID"], todo["OWNER_ID"], todo["RESPONSIBLE_ID"]) == ("2", deal["ID"], "5")
    assert "first response target of Sales (5 min) was missed: 7 min" in todo["DESCRIPTION"]
    assert todo["DEADLINE"].startswith("2026-11-25T12:30:00")
    # Delivered again (a retry after a lost answer, its link gone): found by its marker, not doubled.
    from sqlalchemy import delete
    from hub.models import CrmLink
    with runtime.db.scope() as session:
        session.execute(delete(CrmLink).where(CrmLink.entity_type == "sla_task"))
    again = b24.deliver([hub_event("sla.breached", 4, attempt=2)])[0]
    assert again.status == "done" and again.response["task_id"] == todo["ID"]
    assert b24.deliver([breach])[0].status == "done"
    assert len(p.activities) == 1


def test_an_sla_breach_of_a_conversation_the_crm_has_not_seen_creates_the_deal_with_its_to_do(runtime, portal):
    p = portal.portal
    b24 = make(runtime, webhook_settings(portal))
    (outcome,) = b24.deliver([hub_event("sla.breached", 6)])
    assert outcome.status == "done"
    (todo,) = p.activities.values()
    assert todo["OWNER_ID"] == next(iter(p.deals.values()))["ID"]
