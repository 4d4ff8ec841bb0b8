"""Scheduled reports end to end: a real SMTP server on loopback receives a weekly report
once, with its HTML, text and CSV attachment; report.ready for webhooks; the report a
stopped hub missed goes out once when the scheduler starts; refusals are kept in the
report's history (both databases)."""
from __future__ import annotations

import csv
import email
import html as html_lib
import io
import re
import socket
import time
from datetime import datetime, timedelta, timezone
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from PIL import Image
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Event, Message, ReportRun, ReportSchedule
from hub.reports.jobs import scheduled_reports
from hub.reports.runs import run_due
from hub.jobs.scheduler import LeaderScheduler, registered_jobs
from tests.conftest import make_config
from tests.reports.test_charts import columns_drawn, rows_drawn
from tests.support.whatsapp import make_channel

MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"hub" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def reporting(database_url, tmp_path, smtp):
    from hub.platform.runtime import Runtime

    controller, _inbox = smtp
    config = make_config(database_url, tmp_path, reports__smtp_host="127.0.0.1", reports__smtp_port=controller.port,
                         reports__smtp_security="none", reports__smtp_username="hub", reports__smtp_password="s3cret",
                         reports__from_address="reports@hub.test")
    rt = Runtime.from_config(config)
    yield rt
    rt.db.dispose()


def _seed(runtime, *, recipients=("head@example.com",), webhook=True, frequency="weekly") -> int:
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        contact = Contact(wa_id="15550000001", phone="+15550000001", name="Ana", created_at=MONDAY_9,
                          updated_at=MONDAY_9)
        s.add(contact)
        s.flush()
        opened = MONDAY_9 - timedelta(days=2)  # inside the week the report covers
        c = Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=opened,
                         created_at=opened, updated_at=opened)
        s.add(c)
        s.flush()
        s.add(Message(conversation_id=c.id, direction="in", type="text", text="hi", status="received",
                      sent_at=opened, payload={}))
        schedule = ReportSchedule(name="Weekly sales", frequency=frequency, at_time="09:00", weekday=0,
                                  time_zone="UTC", filters={}, recipients=list(recipients), webhook=webhook,
                                  created_at=MONDAY_9)
        s.add(schedule)
        s.flush()
        return schedule.id


def test_a_weekly_report_arrives_once_with_its_figures_and_attachment(reporting, smtp):
    _controller, inbox = smtp
    schedule_id = _seed(reporting)
    assert len(run_due(reporting, MONDAY_9 + timedelta(minutes=1))) == 1
    assert run_due(reporting, MONDAY_9 + timedelta(minutes=2)) == [], "that period went out already"
    assert run_due(reporting, MONDAY_9 + timedelta(days=3)) == []
    (message,) = inbox.messages
    assert message["To"] == "head@example.com" and message["From"] == "reports@hub.test"
    assert message["Subject"].startswith("Weekly sales: 2026-11-23 09:00 - 2026-11-30 09:00")
    html = message.get_body(("html",)).get_content()
    assert "Conversations" in html and "<b>1</b>" in html
    # The charts: inline PNG images of a multipart/related the HTML shows by cid:.
    (related,) = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    images = {p["Content-ID"].strip("<>"): p for p in related.iter_parts() if p.get_content_type() == "image/png"}
    cids = re.findall(r"src='cid:([^']+)'", html)
    assert len(cids) == 3 and set(cids) == set(images), "each image referenced, nothing else"
    drawn = {}
    for cid in cids:
        image = Image.open(io.BytesIO(images[cid].get_content()))
        assert image.format == "PNG" and image.size[0] == 600
        image.verify()
        assert images[cid].get_content_disposition() == "inline"
        drawn[images[cid].get_filename()] = images[cid].get_content()
    assert columns_drawn(drawn["per_slot.png"]) == 7, "one bar per day of the week"
    assert columns_drawn(drawn["first_response.png"]) == 7, "the histogram's buckets"
    assert rows_drawn(drawn["operators.png"]) == 1, "(unassigned)"
    text = message.get_body(("plain",)).get_content()
    assert "Conversations per day:" in text and "  11-28: 1" in text and "First response times:" in text
    (attachment,) = list(message.iter_attachments())
    table = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert [row["contact_name"] for row in table] == ["Ana"] and table[0]["missed"] == "True"
    with reporting.db.scope() as s:
        (run,) = s.scalars(select(ReportRun)).all()
        assert (run.status, run.error, run.schedule_id) == ("sent", "", schedule_id)
        ready = s.scalars(select(Event).where(Event.type == "report.ready")).one().data["report"]
    assert ready["id"] == run.id and ready["figures"]["conversations"] == 1
    assert ready["url"].startswith("http://hub.test/api/v1/reports/conversations.csv?from=2026-11-23")
    assert ready["export_url"].startswith(f"http://hub.test/reports/exports/{run.id}.csv?expires=")
    assert ready["export_url"] in text, "the e-mail links the export too"
    assert html_lib.escape(ready["export_url"]) in html
    # The next week's firing is a new period.
    assert len(run_due(reporting, MONDAY_9 + timedelta(days=7))) == 1 and len(inbox.messages) == 2


def test_the_report_a_stopped_hub_missed_goes_out_once_when_the_scheduler_starts(reporting, smtp):
    _controller, inbox = smtp
    _seed(reporting)
    spec = next(s for s in registered_jobs() if s.id == "scheduled_reports")
    assert spec.func is scheduled_reports
    # The hub was down over Monday 09:00 and starts on Tuesday.
    clock = lambda: MONDAY_9 + timedelta(days=1)  # noqa: E731
    scheduler = LeaderScheduler(reporting, holder="s", clock=clock, jobs=[spec])
    try:
        assert scheduler.tick()
        deadline = time.monotonic() + 10
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(inbox.messages) == 1, "sent on start, not a check interval later"
        scheduler.run_job_now("scheduled_reports")
        scheduler.run_job_now("scheduled_reports")
    finally:
        scheduler._stop_jobs()
    assert len(inbox.messages) == 1, "never twice"
    with reporting.db.scope() as s:
        assert s.scalar(select(func.count()).select_from(ReportRun)) == 1


def test_a_refused_login_is_kept_in_the_reports_history(database_url, tmp_path, smtp):
    from hub.platform.runtime import Runtime

    controller, inbox = smtp
    config = make_config(database_url, tmp_path, reports__smtp_host="127.0.0.1", reports__smtp_port=controller.port,
                         reports__smtp_security="none", reports__smtp_username="hub", reports__smtp_password="wrong",
                         reports__from_address="reports@hub.test")
    runtime = Runtime.from_config(config)
    try:
        _seed(runtime, webhook=False)
        run_due(runtime, MONDAY_9 + timedelta(minutes=1))
        with runtime.db.scope() as s:
            run = s.scalars(select(ReportRun)).one()
            assert run.status == "failed" and "refused the login: 535" in run.error
        assert inbox.messages == []
        assert run_due(runtime, MONDAY_9 + timedelta(minutes=5)) == [], "a failed period is not retried silently"
    finally:
        runtime.db.dispose()


def test_schedules_through_the_api_with_their_history_and_send_now(runtime, client, admin_headers):
    body = {"name": "Daily", "frequency": "daily", "at_time": "08:00", "time_zone": "Europe/Moscow", "webhook": True}
    r = client.post("/api/v1/report-schedules", json=body, headers=admin_headers)
    assert r.status_code == 201, r.json
    schedule = r.json
    assert schedule["next_period"]["to"].endswith("05:00:00+00:00"), "08:00 Moscow"
    r = client.post(f"/api/v1/report-schedules/{schedule['id']}/send", headers=admin_headers)
    assert r.status_code == 201 and r.json["status"] == "sent" and r.json["manual"]
    history = client.get(f"/api/v1/report-schedules/{schedule['id']}/runs", headers=admin_headers).json
    assert [h["id"] for h in history] == [r.json["id"]]
    assert client.patch(f"/api/v1/report-schedules/{schedule['id']}", json={"at_time": "07:30"},
                        headers=admin_headers).json["at_time"] == "07:30"


@pytest.mark.parametrize("body, field", [
    ({"time_zone": "Nowhere/Town"}, "time_zone"),
    ({"webhook": False, "recipients": []}, "recipients"),
    ({"recipients": ["not-an-address"]}, "recipients"),
    ({"at_time": "9am"}, "at_time"),
    ({"frequency": "hourly"}, "frequency"),
    ({"day_of_month": 31, "frequency": "monthly"}, "day_of_month"),
])
def test_bad_schedules_are_refused_by_name_and_nothing_saved(runtime, client, admin_headers, body, field):
    full = {"name": "R", "frequency": "weekly", "at_time": "09:00", "webhook": True, **body}
    r = client.post("/api/v1/report-schedules", json=full, headers=admin_headers)
    assert r.status_code == 422 and field in r.json["errors"]["json"], r.json
    with runtime.db.scope() as s:
        assert s.scalar(select(func.count()).select_from(ReportSchedule)) == 0
