"""The admin's CRM chat settings against each CRM's emulator (the demo's chat set-up):
the line / inbox pickers are filled from the CRM, and Test connection on the connector
page reports each hop of the chat (amoCRM: account, chat channel connected; Bitrix24:
connector registered, line active, event bound; HubSpot: channel registered and bound
to the inbox)."""
from __future__ import annotations

import html
import re

import pytest

from hub.demo import connect_crm, crm_emulator
from hub.platform.db import utcnow
from tests.support.admin import post, signed_in

HOPS = {
    "amocrm": ["connected to amoCRM account", "chat channel connected", '"chat_scope_id"'],
    "bitrix24": ["connector whatsapp_hub registered", "active on open line 1",
                 "OnImConnectorMessageAdd bound to the hub"],
    "hubspot": ["custom channel WhatsApp (hub) bound to inbox 'Sales inbox'", "WhatsApp number(s) connected",
                '"custom_channel_id"'],
}
PICKERS = {  # field -> the options the CRM's emulator offers
    # amoCRM lists no chat channels (their id and secret come with the channel's registration):
    # its picker here is the pipeline's.
    "amocrm": ("pipeline_id", ["Sales", "Support"]),
    "bitrix24": ("openlines_line_id", ["WhatsApp sales", "Support", "Old line (inactive)"]),
    "hubspot": ("inbox_id", ["Sales inbox", "Support"]),
}


def field_block(page: str, name: str) -> str:
    start = page.find(f'id="field-{name}"')
    assert start >= 0, f"no field {name} in the page"
    end = min([i for i in (page.find('id="field-', start + 10), page.find("</form>", start)) if i > 0])
    return html.unescape(page[start:end])


@pytest.mark.parametrize("kind", sorted(HOPS))
def test_pickers_come_from_the_crm_and_test_connection_reports_each_hop(app, runtime, kind):
    admin = signed_in(app, runtime, "admin")
    with crm_emulator(kind, chat=True) as crm:
        cid, _, _ = connect_crm(runtime, crm, now=utcnow())
        r = post(admin, f"/admin/connectors/{cid}/check", page=f"/admin/connectors/{cid}",
                 headers={"HX-Request": "true"})
        assert r.status_code == 200
        shown = html.unescape(r.get_data(as_text=True))
        assert "Connection works" in shown, shown
        missing = [hop for hop in HOPS[kind] if hop not in shown]
        assert missing == [], shown
        page = admin.get(f"/admin/connectors/{cid}/edit").get_data(as_text=True)
        field, offered = PICKERS[kind]
        block = field_block(page, field)
        options = [o.strip() for o in re.findall(r"<option[^>]*>([^<]*)</option>", block)]
        assert [o for o in offered if o not in options] == [], block
