"""Each CRM connector says where a linked record opens in the CRM's own UI, so the
inbox's "In the CRM" entries are links an operator can click."""
from __future__ import annotations

from sqlalchemy import select

from connectors.amocrm import AmoCrmConnector
from connectors.bitrix24 import Bitrix24Connector
from connectors.hubspot import HubSpotConnector
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.links import DbLinkStore
from hub.models import Conversation
from tests.support.admin import signed_in
from tests.support.whatsapp import fixture, make_channel, post_signed


def test_amocrm_links_leads_and_contacts():
    settings = {"base_url": "https://acme.kommo.com/"}
    assert AmoCrmConnector.link_url(settings, "lead", "9001") == "https://acme.kommo.com/leads/detail/9001"
    assert AmoCrmConnector.link_url(settings, "contact", "42") == "https://acme.kommo.com/contacts/detail/42"
    assert AmoCrmConnector.link_url(settings, "intent", "42") is None
    assert AmoCrmConnector.link_url(settings, "lead", "javascript:alert(1)") is None


def test_bitrix24_links_deals_leads_and_contacts():
    settings = {"portal_url": "https://acme.bitrix24.com"}
    assert Bitrix24Connector.link_url(settings, "deal", "7") == "https://acme.bitrix24.com/crm/deal/details/7/"
    assert Bitrix24Connector.link_url(settings, "lead", "8") == "https://acme.bitrix24.com/crm/lead/details/8/"
    assert Bitrix24Connector.link_url(settings, "contact", "9") == "https://acme.bitrix24.com/crm/contact/details/9/"
    assert Bitrix24Connector.link_url(settings, "timeline_comment", "9") is None


def test_hubspot_links_need_the_account_id():
    assert HubSpotConnector.link_url({"portal_id": ""}, "deals", "55") is None
    settings = {"portal_id": "4711"}
    assert HubSpotConnector.link_url(settings, "deals", "55") == "https://app.hubspot.com/contacts/4711/record/0-3/55"
    assert HubSpotConnector.link_url(settings, "contacts", "56") == \
        "https://app.hubspot.com/contacts/4711/record/0-1/56"
    assert HubSpotConnector.link_url(settings, "communications", "57") is None


def test_the_inbox_links_to_the_records(app, runtime):
    _, key = make_channel(runtime)
    post_signed(app.test_client(), key, fixture("text__plain"))
    with runtime.db.scope() as s:
        conv = s.scalars(select(Conversation)).one()
        conversation_id, contact_id = conv.id, conv.contact_id
        record = create_connector(s, runtime.vault, kind="amocrm", name="Sales amoCRM", now=utcnow(), settings={
            "base_url": "https://acme.amocrm.ru", "long_lived_token": "t0ken-never-shown",
            "pipeline_id": 1, "status_id": 2})
        connector_id = record.id
    DbLinkStore(runtime.db, connector_id).put("conversation", str(conversation_id), "lead", "9001")
    DbLinkStore(runtime.db, connector_id).put("contact", str(contact_id), "contact", "4242")
    page = signed_in(app, runtime, "viewer").get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert 'href="https://acme.amocrm.ru/leads/detail/9001"' in page
    assert 'href="https://acme.amocrm.ru/contacts/detail/4242"' in page
    assert "t0ken-never-shown" not in page
