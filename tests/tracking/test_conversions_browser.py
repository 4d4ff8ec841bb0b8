"""A conversion destination in a real browser (Playwright + Debian's chromium): GA4 set up
through the admin form against its emulator and tested; a visitor of a tracked link
writes on WhatsApp, the deal is won; the delivery log lists the first message and the
won deal as sent (the goals named, in Russian too) and GA4 holds the purchase. No
Content-Security-Policy violation on the way."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from connectors.base import ReportDealStage
from connectors.ga4 import emulator as ga4_emulator
from hub.crm.commands import execute
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Conversation
from tests.support.admin import PASSWORD, make_user
from tests.support.browser import LiveHub, browser_page, needs_chromium, shots  # noqa: F401 (fixtures)
from tests.support.tracking import make_link, prefilled
from tests.support.whatsapp import make_channel, post_signed
from tests.web.admin.test_browser import CspWatch, RequestsClient, inbound_now

pytestmark = [pytest.mark.slow, needs_chromium]
GA_COOKIE, CLIENT_ID = "GA1.2.1111111111.1700000000", "1111111111.1700000000"


def tracked_first_message(hub_url: str) -> str:
    """The prefilled text of a visit to the tracked link with a GA cookie."""
    visit = requests.get(f"{hub_url}/l/spring-sale", cookies={"_ga": GA_COOKIE}, allow_redirects=False, timeout=10)
    assert visit.status_code == 302, visit.text[:300]
    return prefilled(visit)


def win_the_deal(runtime) -> None:
    with runtime.db.scope() as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
        [result] = execute(session, [ReportDealStage(deal_id="D-77", stage="142", outcome="won", amount="1500",
                                                     currency="USD", conversation_id=conversation_id)],
                           now=utcnow())
        assert result.ok, result.as_dict()


def test_a_ga4_destination_set_up_in_the_admin_lists_the_won_deal_as_sent(app, runtime, browser_page, shots):
    page = browser_page
    csp = CspWatch(page)
    make_user(runtime, "admin", "ann@example.com", name="Ann Admin")
    channel_id, key = make_channel(runtime)
    make_link(runtime, channel_id)
    with LiveHub(app) as hub, ga4_emulator.serve() as ga:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(hub.url + "/admin/connectors/new")
        page.click("text=Google Analytics 4 (Measurement Protocol)")
        page.fill("#in-name", "ga4")
        page.fill("#in-measurement_id", "G-HUB0000001")
        page.fill("#in-api_secret", "emulator-api-secret-1")
        page.fill("#in-endpoint", ga.base_url)
        page.fill("#in-goals", "first_message -> generate_lead\nwon -> purchase = amount")
        shots(page, "ga4-form")
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/connectors/*")
        assert "emulator-api-secret-1" not in page.content()
        page.click("#test-connection")
        page.wait_for_selector("#check-outcome")
        assert "GA4 accepts the events" in page.inner_text("#check-outcome"), page.inner_text("#check-outcome")
        shots(page, "ga4-tested")

        text = tracked_first_message(hub.url)
        assert post_signed(RequestsClient(hub.url), key, inbound_now("wamid.GA4BROWSER1", text)).status_code == 200
        win_the_deal(runtime)
        Worker(runtime.db, runtime.vault, runtime.config).drain()

        page.click("text=Delivery log")
        won = page.locator("tr", has=page.locator("code", has_text="deal.stage_changed"))
        assert won.locator(".badge.good", has_text="done").count() == 1
        assert won.locator(".delivery-sent").inner_text() == "sent: purchase"
        first = page.locator("tr", has=page.locator("code", has_text="lead.attributed"))
        assert first.locator(".delivery-sent").inner_text() == "sent: generate_lead"
        shots(page, "ga4-deliveries")
        won.locator("a").first.click()
        assert '"purchase"' in page.inner_text("pre >> nth=-1")
        shots(page, "ga4-delivery")
        page.click("text=Back to the log")
        page.click("text=RU")
        page.wait_for_selector(".delivery-sent")
        assert "отправлено: purchase" in page.locator(".delivery-sent").all_inner_texts()
        shots(page, "ga4-deliveries-ru")
        purchases = ga.events("purchase")
    assert [(e["client_id"], e["event"]["params"]["value"], e["event"]["params"]["currency"]) for e in purchases] == [
        (CLIENT_ID, 1500.0, "USD")]
    assert csp.violations() == []
