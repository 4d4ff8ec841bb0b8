"""The admin in a real browser (Playwright + Debian's chromium): first-run setup, a
channel, a webhook connector with Test connection, an inbound emulated message in the
inbox and its delivery in the log, a dead letter replayed, a reply inside the window and
one refused outside it, a template with a preview; an amoCRM connector against its
emulator; Connect with HubSpot through its (emulated) install page; a screenshot of
every page. Every page must load and work with no Content-Security-Policy violation."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Conversation, Message, Template
from tests.support.browser import LiveHub, browser_page, free_port, needs_chromium, shots  # noqa: F401 (fixtures)
from tests.support.factories import SECRET
from tests.support.receiver import Receiver, Reply
from tests.support.whatsapp import APP_SECRET, PHONE_NUMBER_ID, WABA_ID, fixture, post_signed

pytestmark = [pytest.mark.slow, needs_chromium]
PASSWORD = "a long admin password"


HUB_PORT = free_port()


@pytest.fixture
def config(database_url, tmp_path):
    """The hub knows the address it is served at (OAuth callbacks are under it)."""
    from tests.conftest import make_config

    return make_config(database_url, tmp_path, base_url=f"http://127.0.0.1:{HUB_PORT}")


def inbound_now(wamid: str, text: str) -> bytes:
    """The fixture's text message, sent just now (so the 24-hour window is open)."""
    body = json.loads(fixture("text__plain"))
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id=wamid, timestamp=str(int(time.time())), text={"body": text})
    return json.dumps(body).encode()


class CspWatch:
    """Content-Security-Policy violations in every page the browser opens: each page's
    securitypolicyviolation events (reported through a binding that survives navigation)
    and the console errors Chromium logs for them."""

    SCRIPT = """document.addEventListener("securitypolicyviolation", (e) => window.__hubCspViolation(
        `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${location.pathname}`));"""

    def __init__(self, page):
        self.page = page
        self.seen: list[str] = []
        page.expose_function("__hubCspViolation", self._report)
        page.add_init_script(self.SCRIPT)
        page.on("console", self._console)

    def _report(self, text: str) -> None:
        self.seen.append(text)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.seen.append(message.text)

    def violations(self) -> list[str]:
        self.page.evaluate("1")  # a round trip, so reports already sent have arrived
        self.page.wait_for_timeout(100)
        return list(self.seen)


@pytest.fixture
def csp(browser_page) -> CspWatch:
    return CspWatch(browser_page)


class RequestsClient:
    """post_signed() speaks to a test client; this sends the same over HTTP."""

    def __init__(self, base: str):
        self.base = base

    def post(self, path, data, headers):
        return requests.post(self.base + path, data=data, headers=headers, timeout=10)


def test_the_policy_is_enforced_and_a_violation_would_be_caught(app, runtime, browser_page, csp):
    """The watch is not blind: script and styles injected into an admin page are refused
    by the browser and reported."""
    from tests.support.admin import make_user

    make_user(runtime, "admin")
    page = browser_page
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        assert page.locator("button[type=submit]").is_visible()
        assert csp.violations() == []
        page.evaluate("""() => {
            const s = document.createElement("script"); s.textContent = "window.__ran = true";
            document.body.appendChild(s);
            document.body.setAttribute("style", "background: red");
        }""")
        assert page.evaluate("window.__ran === undefined")
        seen = " | ".join(csp.violations())
        assert "script-src" in seen and "style-src" in seen, seen


def test_admin_end_to_end_in_a_browser(app, runtime, browser_page, shots, csp):
    from playwright.sync_api import expect

    page = browser_page
    events_accepted = {"yes": False}

    def receiver_script(req, n):
        if req.json().get("type") == "ping" or events_accepted["yes"]:
            return Reply(200)
        return Reply(400, body=b'{"error":"unknown customer"}')

    with LiveHub(app) as hub, Receiver(receiver_script) as receiver:
        # -- first run ----------------------------------------------------------------------------
        page.goto(hub.url + "/")
        assert page.url.endswith("/admin/setup")
        shots(page, "setup")
        page.fill("#in-name", "Ann Admin")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", PASSWORD)
        page.fill("#in-password_again", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/")
        assert "First steps" in page.content()
        shots(page, "overview-first-steps")

        # -- a channel ----------------------------------------------------------------------------
        page.click("text=Add your WhatsApp number")
        page.fill("#in-name", "Sales")
        page.fill("#in-phone_number_id", PHONE_NUMBER_ID)
        page.fill("#in-waba_id", WABA_ID)
        page.fill("#in-display_number", "+1 555 000 1111")
        page.fill("#in-access_token", "EAAG-browser-token")
        page.click("button[type=submit]")  # app secret forgotten
        assert page.locator("#field-app_secret .error").inner_text() == "required for this provider"
        assert page.input_value("#in-display_number") == "+1 555 000 1111"
        assert page.input_value("#in-access_token") == ""  # never put back
        shots(page, "channel-form-error")
        assert page.is_hidden("#field-d360_api_key")  # only the chosen provider's credentials (admin.js)
        page.select_option("#in-provider", "360dialog")
        assert page.is_visible("#field-d360_api_key") and page.is_hidden("#field-access_token")
        page.select_option("#in-provider", "cloud")
        page.fill("#in-access_token", "EAAG-browser-token")
        page.fill("#in-app_secret", APP_SECRET)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/channels/1")
        webhook_url = page.inner_text("#webhook-url")
        key = webhook_url.rsplit("/", 1)[1]
        assert page.inner_text("#verify-token")
        shots(page, "channel")

        # -- a generic webhook connector, Test connection -----------------------------------------
        page.click("nav >> text=Connectors")
        page.click("text=Add connector")
        shots(page, "connector-kinds")
        page.click("text=Generic webhook (Standard Webhooks)")
        page.fill("#in-name", "my-app")
        page.fill("#in-url", receiver.url + "/hooks")
        page.fill("#in-secret", SECRET)
        shots(page, "connector-form")
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/connectors/1")
        page.click("#test-connection")
        page.wait_for_selector("#check-outcome")
        assert "Connection works" in page.inner_text("#check-outcome")
        shots(page, "connector-tested")
        page.click("text=Mapping preview")
        assert "What would be sent" in page.content()
        shots(page, "connector-preview")

        # -- an inbound message: inbox, then the delivery in the log ------------------------------
        r = post_signed(RequestsClient(hub.url), key, inbound_now("wamid.BROWSER1", "Hello! Is the sofa available?"))
        assert r.status_code == 200
        with runtime.db.scope() as s:
            s.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                           category="UTILITY", parameter_format="POSITIONAL", synced_at=utcnow(),
                           components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."},
                                       {"type": "FOOTER", "text": "Shop Example"}],
                           created_at=utcnow(), updated_at=utcnow()))
        page.click("nav >> text=Inbox")
        page.wait_for_selector("text=Ana Souza")
        shots(page, "inbox")

        Worker(runtime.db, runtime.vault, runtime.config).drain()  # the receiver refuses: dead letters
        page.click("nav >> text=Deliveries")
        assert page.locator(".badge.bad", has_text="dead").count() >= 2
        page.select_option("#connector-filter", label="my-app")  # choosing filters, no button needed
        page.wait_for_url(re.compile(r"/admin/deliveries\?connector_id=1$"))
        shots(page, "deliveries-dead")
        page.click("table.list a >> nth=0")
        assert "unknown customer" in page.content()
        shots(page, "delivery")
        page.click("text=Back to the log")
        events_accepted["yes"] = True
        page.once("dialog", lambda dialog: dialog.dismiss())  # asked first: no, and nothing happens
        page.click("text=/Replay all \\d+ dead letters/")
        assert page.locator(".badge.bad", has_text="dead").count() >= 2
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("text=/Replay all \\d+ dead letters/")
        page.wait_for_selector("text=back in the queue")
        Worker(runtime.db, runtime.vault, runtime.config).drain()
        page.reload()
        assert page.locator(".badge.bad", has_text="dead").count() == 0
        assert page.locator(".badge.good", has_text="done").count() >= 2
        shots(page, "deliveries-replayed")

        # -- reply inside the window --------------------------------------------------------------
        page.click("nav >> text=Inbox")
        page.click("text=Ana Souza")
        assert page.is_enabled("#reply-text")
        shots(page, "conversation-open-window")
        page.fill("#reply-text", "Yes! Shall we deliver it on Friday?")
        page.click("#send-reply")
        page.wait_for_selector("text=Reply queued")
        assert page.locator(".msg.out", has_text="Shall we deliver it on Friday?").count() == 1
        shots(page, "reply-queued")

        # -- refused outside it -------------------------------------------------------------------
        page.fill("#reply-text", "Are you still there?")
        with runtime.db.scope() as s:  # a day passes while the page is open
            s.scalars(select(Conversation)).one().last_inbound_at = utcnow() - timedelta(hours=25)
        page.click("#send-reply")
        page.wait_for_selector("#reply-error")
        assert "the 24-hour window is closed" in page.inner_text("#reply-error")
        assert page.is_disabled("#reply-text") and page.is_disabled("#send-reply")
        assert "Replies are off" in page.inner_text("#window-closed")
        shots(page, "reply-refused")
        with runtime.db.scope() as s:
            texts = list(s.scalars(select(Message.text).where(Message.direction == "out")))
        assert texts == ["Yes! Shall we deliver it on Friday?"]

        # -- a template instead, with variables and a live preview ------------------------------
        page.select_option("#template-choice", label="order_update (en, utility)")
        page.wait_for_selector("#var-body_1")
        page.fill("#var-body_1", "Ana")
        page.fill("#var-body_2", "A-1042")
        expect(page.locator("#template-preview")).to_contain_text("A-1042")  # no eval: the CSP forbids it
        shots(page, "template-preview")
        page.click("#send-template")
        page.wait_for_selector("text=Template order_update queued")
        shots(page, "template-queued")

        # -- the remaining pages ------------------------------------------------------------------
        page.click("nav >> text=Templates")
        shots(page, "templates")
        page.click("text=order_update")
        page.fill("#var-body_1", "Ana")
        expect(page.locator("#template-preview")).to_contain_text("Hi Ana")
        shots(page, "template")
        page.click("nav >> text=Users & tokens")
        page.fill("#in-token-name", "crm-sync")
        shots(page, "users")
        page.click("text=Create token")
        assert page.inner_text("#new-token").startswith("hub_")
        shots(page, "token-created")
        page.click("nav >> text=Overview")
        shots(page, "overview")
        page.click("text=RU")
        assert "Обзор" in page.content()
        shots(page, "overview-ru")
        page.goto(hub.url + "/admin/inbox/1")
        shots(page, "conversation-ru")
        page.click("text=Выйти")
        page.wait_for_url("**/admin/login")
        shots(page, "login-ru")
    assert len(shots.taken) >= 20
    assert csp.violations() == []


def _amocrm_emulator():
    try:
        from connectors.amocrm.emulator import serve
    except ImportError:
        pytest.skip("the amoCRM connector (connectors/amocrm) is not installed")
    return serve


def test_amocrm_connector_against_its_emulator_in_a_browser(app, runtime, browser_page, shots, csp):
    """Add an amoCRM connector in the form, test it, pick the pipeline from the lists the
    CRM offers, preview the mapping, and see a conversation arrive in amoCRM."""
    import connectors.amocrm as amocrm
    from tests.support.admin import make_user
    from tests.support.whatsapp import make_channel

    serve = _amocrm_emulator()
    amocrm._REPORTED.clear()  # health remembered per process; ids repeat across test databases
    page = browser_page
    make_user(runtime, "admin", "ann@example.com", name="Ann Admin")
    _, key = make_channel(runtime)
    with LiveHub(app) as hub, serve() as amo:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", "correct horse battery")
        page.click("button[type=submit]")
        page.goto(hub.url + "/admin/connectors/new")
        page.click("text=amoCRM / Kommo")
        page.fill("#in-name", "amo")
        page.fill("#in-base_url", amo.base_url)
        page.fill("#in-long_lived_token", amo.token)
        shots(page, "amocrm-form")
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/connectors/*")
        page.click("#test-connection")
        page.wait_for_selector("#check-outcome")
        assert "Connection works" in page.inner_text("#check-outcome"), page.inner_text("#check-outcome")
        shots(page, "amocrm-tested")

        page.click("text=Edit")
        options = page.locator("#in-pipeline_id option").all_inner_texts()
        assert len(options) > 1, "pipelines are offered from amoCRM"
        page.select_option("#in-pipeline_id", index=1)
        page.select_option("#in-status_id", index=1)
        shots(page, "amocrm-edit-with-choices")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Connector saved.")

        page.click("text=Mapping preview")
        assert "What it would do in the CRM" in page.content() and "/api/v4/leads/complex" in page.content()
        assert amo.token not in page.content()
        shots(page, "amocrm-preview")

        r = post_signed(RequestsClient(hub.url), key, inbound_now("wamid.AMO1", "Hello from the browser test"))
        assert r.status_code == 200
        Worker(runtime.db, runtime.vault, runtime.config).drain()
        page.click("text=Back to the connector")
        page.click("text=Delivery log")
        assert page.locator(".badge.good", has_text="done").count() >= 2
        assert page.locator(".badge.bad", has_text="dead").count() == 0
        shots(page, "amocrm-deliveries")
        assert amo.counts()["deals"] == 1 and amo.counts()["contacts"] == 1 and amo.counts()["notes"] == 1
        page.click("nav >> text=Inbox")
        page.click("text=Ana Souza")
        crm = page.inner_text("text=In the CRM >> xpath=..")
        assert "amo" in crm and "#" in crm
        hrefs = page.locator("text=In the CRM >> xpath=.. >> a").evaluate_all("links => links.map(a => a.href)")
        assert any(h.startswith(amo.base_url + "/leads/detail/") for h in hrefs), hrefs
        shots(page, "amocrm-conversation-with-crm-links")
    assert csp.violations() == []



def test_connect_with_hubspot_in_a_browser(app, runtime, browser_page, shots, csp):
    """The admin presses Connect with HubSpot, approves the app on HubSpot's (emulated)
    install page and comes back connected: the session cookie survives the round trip."""
    from connectors.hubspot import benchkit, emulator
    from hub.crm.store import create_connector, full_settings
    from hub.models import ConnectorRecord
    from tests.support.admin import make_user

    callback = f"http://127.0.0.1:{HUB_PORT}/admin/connectors/oauth/callback"
    page = browser_page
    make_user(runtime, "admin", "ann@example.com", name="Ann Admin")
    options = emulator.Options()
    with benchkit.start_emulator(redirect_uris=(callback,)) as hubspot, LiveHub(app, port=HUB_PORT) as hub:
        with runtime.db.scope() as s:
            connector_id = create_connector(s, runtime.vault, kind="hubspot", name="HubSpot", now=utcnow(), settings={
                **benchkit.connector_settings(hubspot.base_url), "auth_mode": "oauth", "access_token": "",
                "client_id": options.client_id, "client_secret": options.client_secret,
                "redirect_uri": options.redirect_uri, "authorize_url": hubspot.base_url + "/oauth/authorize"}).id
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", "correct horse battery")
        page.click("button[type=submit]")
        page.goto(f"{hub.url}/admin/connectors/{connector_id}")
        assert callback in page.content()
        shots(page, "hubspot-not-connected")
        page.click("#connect")
        page.wait_for_url(f"**/admin/connectors/{connector_id}")
        assert "Connected: Connected to HubSpot account" in page.content(), page.content()[:2000]
        shots(page, "hubspot-connected")
        with runtime.db.scope() as s:
            settings = full_settings(s.get(ConnectorRecord, connector_id), runtime.vault)
        assert settings["oauth_refresh_token"] and settings["redirect_uri"] == callback
        assert settings["oauth_refresh_token"] not in page.content()
    assert csp.violations() == []


def test_routing_pages_in_a_browser(app, runtime, browser_page, shots, csp):
    """A team added in its form (a bad hours value first), a rule, the presence toggle in
    the header, the operators page and the inbox's queue views: no CSP violation."""
    from tests.support.admin import make_user
    from tests.support.whatsapp import make_channel

    page = browser_page
    make_user(runtime, "admin", "ann@example.com", name="Ann Admin")
    make_channel(runtime)
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", "correct horse battery")
        page.click("button[type=submit]")
        page.click("nav >> text=Routing")
        page.click("text=Add a team")
        page.fill("#in-name", "Support")
        page.fill("#in-time_zone", "Europe/Moscow")
        page.fill("#in-hours_mon", "09:00-25:00")
        page.check("input[name=member_ids]")
        page.click("button[type=submit]")
        assert "is not a time of day" in page.inner_text("#field-hours_mon")
        shots(page, "team-form-error")
        page.fill("#in-hours_mon", "09:00-18:00")
        page.fill("#in-first_response_minutes", "5")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Team saved.")
        shots(page, "team")
        page.click("text=← Routing")
        page.click("text=Add a rule")
        page.select_option("#in-target", label="Team: Support")
        page.fill("#in-keywords", "price, цена")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Routing rule saved.")
        shots(page, "routing")
        page.select_option("#presence-toggle select", "online")  # submits itself (admin.js)
        page.wait_for_selector("text=You are online.")
        page.click("nav >> text=Operators")
        assert page.locator("#presence-toggle select").input_value() == "online"
        shots(page, "operators")
        page.goto(hub.url + "/admin/inbox?view=queued")
        page.goto(hub.url + "/admin/inbox?view=breaching")
        shots(page, "inbox-breaching")
    assert csp.violations() == []


def test_reports_page_in_a_browser(app, runtime, browser_page, shots, csp):
    """The reports page with its figures, server-drawn SVG charts and definitions, a
    custom period picked in the form, and the drill-down behind a bar: no CSP violation."""
    from tests.support.admin import make_user
    from tests.web.admin.test_reports import seed

    seeded = seed(runtime)
    make_user(runtime, "viewer", "vera@example.com", name="Vera Viewer")
    page = browser_page
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "vera@example.com")
        page.fill("#in-password", "correct horse battery")
        page.click("button[type=submit]")
        page.click("nav >> text=Reports")
        page.wait_for_selector("#chart-series svg")
        shots(page, "reports-last-7-days")
        page.fill("#in-from", "2026-11-24")
        page.fill("#in-to", "2026-11-30")
        page.click(".report-filters button[type=submit]")
        page.wait_for_url("**/admin/reports?*from=2026-11-24*")
        assert page.get_attribute("#tile-conversations", "data-value") == "7"
        assert page.locator("#chart-series rect.bar").count() == 7
        assert page.locator("#chart-histogram rect.bar").count() == 7
        page.click("#tile-missed details summary")
        assert page.locator("#tile-missed details p").is_visible()
        shots(page, "reports-week")
        with page.expect_download() as download:
            page.click("#export-csv button")
        assert download.value.suggested_filename == "conversations-20261124-20261201.csv"
        page.click('#chart-operators rect.bar[data-label="ana@example.com"]')
        page.wait_for_selector("#drill-rows")
        ids = [int(i) for i in page.locator("#drill-rows tr[data-conversation-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.conversationId)")]
        assert ids == [seeded["ids"][k] for k in ("c1", "c2", "c3", "p1", "p2")]
        shots(page, "reports-drill-down")
        page.goto(hub.url + "/admin/reports?from=2026-12-02&to=2026-12-01")
        assert "must not be after" in page.inner_text("#report-error")
        shots(page, "reports-bad-period")
    assert csp.violations() == []


def test_contact_card_in_a_browser(app, runtime, browser_page, shots, csp):
    """An operator opens a conversation, edits the contact's name and phone on the Person
    card (a bad phone first, shown beside the field), and the conversation shows the new
    name: no CSP violation."""
    from sqlalchemy import select

    from hub.models import Contact, Conversation
    from tests.support.admin import make_user
    from tests.support.whatsapp import make_channel

    page = browser_page
    make_user(runtime, "operator", "otto@example.com", name="Otto")
    _, key = make_channel(runtime)
    assert post_signed(app.test_client(), key, inbound_now("wamid.CARD1", "Hi")).status_code == 200
    with runtime.db.scope() as s:
        conversation_id = s.scalar(select(Conversation.id))
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "otto@example.com")
        page.fill("#in-password", "correct horse battery")
        page.click("button[type=submit]")
        page.goto(hub.url + f"/admin/inbox/{conversation_id}")
        page.click("#edit-contact")
        page.fill("#in-name", "Ana Paula")
        page.fill("#in-phone", "12")
        page.click("#contact-card button")
        assert "not a phone number in international form" in page.inner_text("#field-phone")
        shots(page, "contact-card-error")
        page.fill("#in-phone", "+49 151 0000 0001")
        page.click("#contact-card button")
        page.wait_for_selector("text=Contact saved: the CRMs are told of the change.")
        assert "Ana Paula" in page.inner_text("h1")
        shots(page, "contact-card-saved")
    with runtime.db.scope() as s:
        contact = s.scalars(select(Contact)).one()
        assert (contact.name, contact.phone) == ("Ana Paula", "+4915100000001")
    assert csp.violations() == []
