"""Sticky routing by the CRM's responsible user, for each CRM: a manager hands the deal to
another user in Bitrix24, amoCRM or HubSpot; the connector's own webhook code turns that
into an assignment the hub carries out; the customer's next chat goes to that operator."""
from __future__ import annotations

import pytest

from connectors.amocrm import phpform
from connectors.base import InboundRequest
from connectors.bitrix24 import mapping as b24_mapping
from connectors.bitrix24 import webhooks as b24_webhooks
from connectors.hubspot import webhooks as hs_webhooks
from connectors.hubspot.sync import OwnerDirectory
from hub.crm.commands import execute
from hub.platform.db import utcnow
from tests.connectors.amocrm.test_webhooks import MemoryLinks, offline_connector
from tests.routing.test_engine import (  # noqa: F401 - fixtures
    _fresh_rule_cache, channel, conversations, customer_writes, make_team, online, operator,
)


class Links(MemoryLinks):
    def set_many(self, entity_type, items):
        for entity_id, _crm_type, crm_id in items:
            self.links[(entity_type, str(entity_id))] = str(crm_id)


class HubSpotDeals:
    """HubSpot's batch read of one deal: its conversation id and its owner now."""

    def __init__(self, conversation_id: int, owner: str):
        self.record = {"id": "9001", "properties": {"hub_conversation_id": str(conversation_id),
                                                    "hubspot_owner_id": owner}}

    def batch_read(self, object_type, ids, properties, id_property=None):
        return [self.record] if "9001" in ids else []


def bitrix24_hand_over(conversation_id: int, email: str):
    deal = {"ID": "759", "ORIGINATOR_ID": b24_mapping.ORIGINATOR, "ORIGIN_ID": str(conversation_id),
            "ASSIGNED_BY_ID": "7"}
    return b24_webhooks.responsible_changed("deal", "759", deal, links=Links({("bitrix24.responsible", "deal:759"): "5"}),
                                            operators=(("ana@example.com", 5), (email, 7)))


def amocrm_hand_over(conversation_id: int, email: str):
    links = Links({("lead", "77"): str(conversation_id), ("amocrm.responsible", "77"): "9000001"})
    amo = offline_connector(links, operator_users={"ana@example.com": 9000001, email: 9000002})
    body = phpform.encode({"leads": {"responsible": [{"id": 77, "responsible_user_id": 9000002,
                                                      "old_responsible_user_id": 9000001}]},
                           "account": {"subdomain": "acme", "id": "1"}})
    return amo.handle_webhook(InboundRequest(method="POST", url="https://hub.test/hook", path="/hook", headers={},
                                             query={}, body=body.encode() if isinstance(body, str) else body, form={}))


def hubspot_hand_over(conversation_id: int, email: str):
    settings = {"deal_id_property": "hub_conversation_id", "match_owners_by_email": False,
                "owner_map": {"ana@example.com": "41629779", email: "41629780"}}
    links = Links({("hubspot.owner", "9001"): "41629779"})
    changes = [hs_webhooks.OwnerChange("9001", "41629780", 1)]
    return hs_webhooks.owner_commands(changes, HubSpotDeals(conversation_id, "41629780"), links,
                                      OwnerDirectory(None, settings), settings)


@pytest.mark.parametrize("hand_over", [bitrix24_hand_over, amocrm_hand_over, hubspot_hand_over],
                         ids=["bitrix24", "amocrm", "hubspot"])
def test_the_next_chat_goes_to_the_crm_responsible_user(runtime, client, channel, admin_headers, hand_over):
    (ana, _a), (ben, _b) = operator(runtime, "ana"), operator(runtime, "ben")
    online(client, admin_headers, ana)
    make_team(client, admin_headers, [ana, ben], strategy="sticky")
    wa_id = customer_writes(client, channel[1])
    first = max(conversations(runtime))
    assert conversations(runtime)[first][0] == ana  # Ben was offline
    online(client, admin_headers, ben)

    commands = hand_over(first, "ben@example.com")
    assert len(commands) == 1
    with runtime.db.scope() as session:
        assert [r.ok for r in execute(session, commands, now=utcnow())] == [True]
    assert conversations(runtime)[first][0] == ben  # the assignee follows the CRM

    client.post(f"/api/v1/conversations/{first}/close", json={}, headers=admin_headers)
    customer_writes(client, channel[1], "Back", wa_id=wa_id)
    assert conversations(runtime)[max(conversations(runtime))][0] == ben  # sticky: the CRM's user
