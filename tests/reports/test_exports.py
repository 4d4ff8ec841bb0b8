"""The signed link to a report run's export (hub.reports.links, GET
/reports/exports/<run id>.csv): report.ready and the e-mail carry it; it streams the
run's period and filters without a login for [reports] link_days; a tampered or
expired link answers 403 saying so, an unknown run 404 (both databases)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Event, Message, ReportRun, ReportSchedule
from hub.reports.links import ExportLinks
from hub.reports.runs import run_due
from hub.reports.schedule import When, due
from tests.conftest import make_config
from tests.support.whatsapp import make_channel

MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def _conversation(s, channel_id: int, name: str, opened: datetime) -> None:
    contact = Contact(wa_id=f"1555{abs(hash(name)) % 10**7:07d}", phone=None, name=name, created_at=opened,
                      updated_at=opened)
    s.add(contact)
    s.flush()
    c = Conversation(channel_id=channel_id, contact_id=contact.id, status="open", opened_at=opened,
                     created_at=opened, updated_at=opened)
    s.add(c)
    s.flush()
    s.add(Message(conversation_id=c.id, direction="in", type="text", text="hi", status="received", sent_at=opened,
                  payload={}))


@pytest.fixture
def report(runtime):
    """A weekly webhook report of the Sales channel, run for the week to MONDAY_9: its
    report.ready payload."""
    sales, _ = make_channel(runtime, name="Sales")
    support, _ = make_channel(runtime, name="Support", phone_number_id="222222222222222", waba_id="333333333333333")
    now = utcnow()  # the link's life runs from the real clock the route checks it by
    start, end = due(When("weekly", "09:00"), now)
    with runtime.db.scope() as s:
        _conversation(s, sales, "Ana", start + timedelta(days=2))
        _conversation(s, sales, "Old", start - timedelta(days=2))  # the week before
        _conversation(s, support, "Other channel", start + timedelta(days=1))
        s.add(ReportSchedule(name="Weekly sales", frequency="weekly", at_time="09:00", weekday=0, time_zone="UTC",
                             filters={"channel_id": sales}, recipients=[], webhook=True, created_at=start))
    (run_id,) = run_due(runtime, now)
    with runtime.db.scope() as s:
        ready = s.scalars(select(Event).where(Event.type == "report.ready")).one().data["report"]
    assert ready["id"] == run_id
    return ready


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://hub.test", "under base_url"
    return f"{parts.path}?{parts.query}"


def test_report_ready_carries_a_signed_link_that_streams_the_runs_period_and_filters(runtime, client, report):
    url = report["export_url"]
    assert url.startswith(f"http://hub.test/reports/exports/{report['id']}.csv?expires=")
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {"expires", "signature"}
    expires = datetime.fromisoformat(report["export_expires_at"])
    assert int(query["expires"][0]) == int(expires.timestamp())
    assert abs(expires - (utcnow() + timedelta(days=7))) < timedelta(minutes=5), "[reports] link_days = 7"
    r = client.get(_path(url))  # no login, no token
    assert r.status_code == 200 and r.mimetype == "text/csv"
    start = datetime.fromisoformat(report["period_start"])
    end = datetime.fromisoformat(report["period_end"])
    assert f'filename="conversations-{start:%Y%m%d}-{end:%Y%m%d}.csv"' in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["contact_name"] for row in table] == ["Ana"], "the run's week and channel only"
    # Editing the schedule later does not change what the run's link gives.
    with runtime.db.scope() as s:
        s.scalars(select(ReportSchedule)).one().filters = {}
    table = list(csv.DictReader(io.StringIO(client.get(_path(url)).get_data(as_text=True))))
    assert [row["contact_name"] for row in table] == ["Ana"]


def _tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_a_tampered_link_is_refused_with_403(client, report):
    url = report["export_url"]
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    expires = parse_qs(urlsplit(url).query)["expires"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for path in (_tampered(url, signature=flipped),
                 _tampered(url, expires=str(int(expires) + 86400)),  # a longer life
                 _tampered(url).replace(f"/{report['id']}.csv", f"/{report['id'] + 1}.csv")):  # another run
        r = client.get(path)
        assert r.status_code == 403 and r.mimetype == "text/plain", path
        assert "signature does not match" in r.get_data(as_text=True)
    for path in (urlsplit(url).path, _tampered(url, signature=""), _tampered(url, expires="soon")):
        r = client.get(path)
        assert r.status_code == 403 and "incomplete" in r.get_data(as_text=True), path


def test_an_expired_link_is_refused_with_403(runtime, client, report):
    links = ExportLinks.from_runtime(runtime)
    old = links.url(report["id"], now=utcnow() - timedelta(days=7, minutes=1))
    r = client.get(_path(old))
    assert r.status_code == 403 and "has expired" in r.get_data(as_text=True)
    fresh = links.url(report["id"], now=utcnow() - timedelta(days=6, hours=23))
    assert client.get(_path(fresh)).status_code == 200


def test_an_unknown_run_is_404(runtime, client):
    url = ExportLinks.from_runtime(runtime).url(9999, now=utcnow())
    r = client.get(_path(url))
    assert r.status_code == 404 and "no report run 9999" in r.get_data(as_text=True)


def test_a_media_links_signature_never_opens_an_export(runtime, client, report):
    media = runtime.media_links.url(report["id"], now=utcnow())
    r = client.get(_path(media).replace("/media/", "/reports/exports/").replace("?", ".csv?", 1))
    assert r.status_code == 403


def test_link_days_sets_the_links_life(database_url, tmp_path):
    from hub.platform.runtime import Runtime

    runtime = Runtime.from_config(make_config(database_url, tmp_path, reports__link_days=2))
    try:
        links = ExportLinks.from_runtime(runtime)
        now = MONDAY_9
        assert links.expiry(now) == now + timedelta(days=2)
        url = links.url(5, now=now)
        expires = parse_qs(urlsplit(url).query)["expires"][0]
        signature = parse_qs(urlsplit(url).query)["signature"][0]
        assert links.check(5, expires, signature, now=now + timedelta(days=2)) is None
        assert "expired" in links.check(5, expires, signature, now=now + timedelta(days=2, seconds=1))
        other_key = ExportLinks(links.base_url, "another-secret", links.lifetime)
        assert "signature" in other_key.check(5, expires, signature, now=now)
    finally:
        runtime.db.dispose()


def test_a_run_from_before_filters_were_kept_uses_its_schedules(runtime, client, report):
    with runtime.db.scope() as s:
        run = s.get(ReportRun, report["id"])
        run.figures = {k: v for k, v in run.figures.items() if k != "filters"}
    table = list(csv.DictReader(io.StringIO(client.get(_path(report["export_url"])).get_data(as_text=True))))
    assert [row["contact_name"] for row in table] == ["Ana"]
