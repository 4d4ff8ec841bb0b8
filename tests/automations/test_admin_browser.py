"""The automations admin in a real browser (Playwright + Debian's chromium): a scenario
made from a ready example, one step edited in its form, published, and the simulator
chat run against the test contact, the bot answering each turn. Screenshots of every
stage stay in the test's tmp folder; no Content-Security-Policy violation on the way."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.models import Message, Scenario, ScenarioVersion
from tests.support.admin import PASSWORD, make_user
from tests.support.browser import LiveHub, Shots, browser_page, needs_chromium  # noqa: F401 (fixtures)
from tests.web.admin.test_browser import CspWatch

pytestmark = [pytest.mark.slow, needs_chromium]


def test_example_edited_in_a_form_published_and_simulated(app, runtime, browser_page, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    csp = CspWatch(page)
    shots = Shots(tmp_path / "screenshots")
    make_user(runtime, "admin", "ann@example.com", name="Ann Admin")
    with LiveHub(app) as hub:
        page.goto(hub.url + "/admin/login")
        page.fill("#in-email", "ann@example.com")
        page.fill("#in-password", PASSWORD)
        page.click("button[type=submit]")

        page.goto(hub.url + "/admin/automations")
        page.select_option("#example", "lead_qualification")
        page.click("text=Import as a draft")
        expect(page.locator("h1")).to_have_text("Lead qualification")
        expect(page.locator("#steps")).to_contain_text("Hello! Three quick questions")
        shots(page, "draft-from-example")

        page.click("[aria-label='Edit step hello']")
        expect(page.locator("#in-text")).to_have_value("Hello! Three quick questions and a manager will be with you.")
        page.fill("#in-text", "Welcome, {{contact.name}}! Three quick questions first.")
        shots(page, "step-form")
        page.click("text=Save the step")
        expect(page.locator(".flash.success")).to_contain_text("Step hello saved in the draft.")
        expect(page.locator("#steps")).to_contain_text("Welcome, {{contact.name}}! Three quick questions first.")

        page.click("button[name=publish]")
        expect(page.locator(".page-head .sub")).to_contain_text("version 1 runs")
        shots(page, "published")

        page.click("text=Simulator")
        page.click("text=Start the scenario")
        transcript = page.locator(".transcript")
        expect(transcript).to_contain_text("Welcome, Test contact! Three quick questions first.")
        expect(transcript).to_contain_text("What is your name?")
        page.fill("#text", "Anna")
        page.click("button[value=reply]")
        expect(transcript).to_contain_text("Nice to meet you, Anna. What do you need?")
        page.click("button[name=press][value=rent]")
        expect(transcript).to_contain_text("What budget do you have in mind (a number)?")
        page.fill("#text", "a lot")
        page.click("button[value=reply]")
        expect(transcript).to_contain_text("Sorry, I need a number, for example 50000.")
        shots(page, "simulator")
        assert csp.violations() == []

    assert [p.name for p in shots.taken] == ["01-draft-from-example.png", "02-step-form.png", "03-published.png",
                                             "04-simulator.png"]
    assert all(p.stat().st_size > 10_000 for p in shots.taken)
    with runtime.db.scope() as s:
        (version,) = s.scalars(select(ScenarioVersion))
        assert version.definition["steps"][0]["text"] == "Welcome, {{contact.name}}! Three quick questions first."
        assert s.scalar(select(Scenario.published_version_id)) == version.id
        assert s.scalars(select(Message)).all() == []  # the simulator sent nothing
