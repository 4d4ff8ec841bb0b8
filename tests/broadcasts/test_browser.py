"""The broadcast wizard in a real browser (Playwright + Debian's chromium), against the
WhatsApp emulator: upload a CSV, choose the variables, read the verdict, create and
launch, watch the live progress page advance, pause and resume, open the results and
download their CSV. No Content-Security-Policy violation on the way."""
from __future__ import annotations

import csv
import io
import re
import threading

import pytest
from sqlalchemy import select

from hub.broadcasts.pump import BroadcastPump
from hub.platform.db import utcnow
from hub.models import Broadcast, BroadcastRecipient
from tests.support.admin import PASSWORD, make_user
from tests.support.browser import LiveHub, browser_page, needs_chromium, shots  # noqa: F401 (fixtures)
from tests.support.wa_emulator import wired, worker
from tests.web.admin.test_browser import CspWatch
from tests.broadcasts.test_e2e import csv_of, setup

pytestmark = [pytest.mark.slow, needs_chromium]


class Sending(threading.Thread):
    """The worker's part, in the background: the pump, the sender, the emulator's webhooks."""

    def __init__(self, runtime, w):
        super().__init__(daemon=True)
        self.runtime, self.w, self.stop, self.failure = runtime, w, threading.Event(), None

    def run(self) -> None:
        pump, work = BroadcastPump(self.runtime, step_seconds=0), worker(self.runtime)
        try:
            while not self.stop.is_set():
                pump.run_once()
                work.drain()
                self.w["emu"].flush()
                self.stop.wait(0.05)
        except Exception as exc:  # reported by the test, not lost in the thread
            self.failure = exc


def recipient_statuses(runtime) -> dict[str, int]:
    with runtime.db.scope() as s:
        out: dict[str, int] = {}
        for status in s.scalars(select(BroadcastRecipient.status)):
            out[status] = out.get(status, 0) + 1
        return out


def done_count(page) -> int:
    text = page.locator("#broadcast-progress p.small").inner_text()
    return int(re.match(r"(\d+) of", text).group(1))


def test_a_broadcast_from_a_csv_through_the_wizard_to_its_results(app, runtime, client, browser_page, shots):
    from playwright.sync_api import expect

    page = browser_page
    csp = CspWatch(page)
    data, phones = csv_of(40, 2, seed=5)
    make_user(runtime, "operator", "op@example.com")
    with wired(runtime, client, utcnow) as w, LiveHub(app) as hub:
        setup(runtime, client, w, mps=4)
        sending = Sending(runtime, w)
        sending.start()
        try:
            page.goto(hub.url + "/admin/login")
            page.fill("input[name=email]", "op@example.com")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.click("nav >> text=Broadcasts")
            expect(page.locator("h1")).to_have_text("Broadcasts")
            page.click("text=New broadcast")
            page.fill("#name", "December offer")
            page.set_input_files("#csv_file", files=[{"name": "december.csv", "mimeType": "text/csv",
                                                      "buffer": data}])
            shots(page, "wizard-audience")
            page.click("#step-audience button[type=submit]")
            report = page.locator("#audience-report")
            expect(report).to_contain_text("not a phone number")
            page.select_option("#var_1", "column:first_name")
            page.select_option("#var_2", "column:code")
            shots(page, "wizard-compose")
            page.click("#step-compose button[type=submit]")
            expect(page.locator("#would-send")).to_have_text("38")
            expect(page.locator("#skipped-reasons")).to_contain_text("not a phone number: 2")
            expect(page.locator("#verdict")).to_contain_text("Hi Name")
            shots(page, "wizard-verdict")
            page.click("#launch")
            expect(page.locator("h1")).to_have_text("December offer")

            # The progress part refreshes itself while it sends.
            expect(page.locator("#broadcast-progress .badge")).to_have_text("sending", timeout=10_000)
            page.wait_for_function("() => /^([1-9]\\d*) of/.test("
                                   "document.querySelector('#broadcast-progress p.small').textContent.trim())",
                                   timeout=20_000)
            first = done_count(page)
            assert 0 < first < 38
            shots(page, "progress-sending")
            page.click("#broadcast-progress button:has-text('Pause')")
            expect(page.locator("#broadcast-progress .badge")).to_have_text("paused")
            expect(page.locator("#paused-reason")).to_contain_text("paused by hand")
            held = recipient_statuses(runtime)
            page.wait_for_timeout(1500)
            assert recipient_statuses(runtime).get("pending") == held.get("pending"), "a pause stops sending"
            assert held.get("pending", 0) > 0
            shots(page, "progress-paused")
            page.click("#broadcast-progress button:has-text('Resume')")
            expect(page.locator("#broadcast-progress .badge")).to_have_text("completed", timeout=40_000)
            expect(page.locator("#broadcast-progress p.small")).to_contain_text("38 of 38 done")
            shots(page, "progress-completed")

            page.click("text=Results")
            expect(page.locator("#results tr")).to_have_count(1 + 38)
            shots(page, "results")
            with page.expect_download() as download:
                page.click("#export-csv")
            rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
            assert len(rows) == 40
            assert sorted(r["phone"] for r in rows if r["status"] != "skipped") == sorted(phones)
            assert sum(1 for r in rows if r["status"] == "skipped" and "bad_number" in r["reason"]) == 2
        finally:
            sending.stop.set()
            sending.join(10)
        assert sending.failure is None, sending.failure
    with runtime.db.scope() as s:
        assert s.scalar(select(Broadcast.status)) == "completed"
    assert sorted(m.recipient.wa_id for m in w["emu"].sent if m.type == "template") == sorted(p[1:] for p in phones)
    assert csp.violations() == []


def test_the_audience_step_builds_a_segment_and_counts_it_live(app, runtime, browser_page, shots):
    """Tags, a contact field and a CRM stage typed and chosen in the segment builder: the
    count under it follows each change, and the verdict names the segment's parts."""
    from playwright.sync_api import expect

    from hub.models import Template
    from tests.support.whatsapp import WABA_ID, make_channel
    from tests.web.admin.test_broadcasts import segment_people

    channel_id, _ = make_channel(runtime)
    with runtime.db.scope() as s:
        s.add(Template(waba_id=WABA_ID, name="promo", language="en", status="APPROVED", category="MARKETING",
                       components=[{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}]))
    segment_people(runtime, channel_id)
    make_user(runtime, "operator", "op@example.com")
    page = browser_page
    csp = CspWatch(page)
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        page.fill("input[name=email]", "op@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(hub.url + "/admin/broadcasts/new")
        count = page.locator("#segment-count")
        expect(count).to_contain_text("Fill in a part")
        page.fill("#name", "Berlin vips")
        page.fill("#seg_tags", "vip, new")
        expect(count).to_have_text("3 contacts match now")
        page.select_option("#seg_field_name", "city")
        expect(count).to_have_text("3 contacts match now")  # everyone's city is set
        page.fill("#seg_field_value", "Berlin")
        expect(count).to_have_text("2 contacts match now")  # Ana and Bob live in Berlin
        page.fill("#seg_tags", "vip")
        expect(count).to_have_text("1 contact matches now")
        page.select_option("#seg_crm_stage", label="Lead · sales")
        expect(count).to_have_text("0 contacts match now")
        page.fill("#seg_tags", "vip, -bad")
        expect(count).to_contain_text("segment.tags_any[1]")
        page.fill("#seg_tags", "vip")
        page.select_option("#seg_crm_stage", label="Won · sales")
        expect(count).to_have_text("1 contact matches now")
        shots(page, "wizard-segment")
        page.click("#step-audience button[type=submit]")
        expect(page.locator("#segment-members")).to_have_text("1 contact matches now")
        page.select_option("#var_1", "contact:name")
        page.select_option("#var_2", "value")
        page.fill("input[name=value_2]", "Z9")
        shots(page, "wizard-segment-compose")
        page.click("#step-compose button[type=submit]")
        expect(page.locator("#would-send")).to_have_text("1")
        audience = page.locator("#verdict-audience")
        for line in ("Audience: Berlin vips", "has any of the tags vip", "field city is Berlin",
                     "CRM stage Won (142) in pipeline sales"):
            expect(audience).to_contain_text(line)
        expect(page.locator("#verdict")).to_contain_text("Hi Ana, code Z9")
        shots(page, "wizard-segment-verdict")
    assert csp.violations() == []
