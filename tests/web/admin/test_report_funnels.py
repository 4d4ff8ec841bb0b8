"""The template and broadcast funnels on the admin's reports page: the chart's bars, the
tables' rows with their definitions, and the page in Russian (both databases)."""
from __future__ import annotations

import re

import pytest

from tests.reports.test_funnels import sent  # noqa: F401 - the fixture
from tests.support.admin import signed_in

WEEK = {"from": "2026-11-30", "to": "2026-12-06"}


@pytest.fixture
def viewer(app, runtime):
    return signed_in(app, runtime, "viewer")


def card(text: str, key: str) -> str:
    start = text.index(f'id="{key}"')
    return text[start:text.index("</details>", start)]


def test_the_page_shows_the_template_and_broadcast_funnels(viewer, sent):  # noqa: F811
    r = viewer.get("/admin/reports", query_string=WEEK)
    text = r.get_data(as_text=True)
    assert r.status_code == 200, text[:800]
    chart = card(text, "chart-templates")
    assert re.findall(r'data-label="([^"]+)" data-value="(\d+)"', chart) == [
        ("Sent", "5"), ("Delivered", "4"), ("Read", "3"), ("Replied", "2"), ("Failed", "1")]
    table = card(text, "report-templates")
    row = re.search(r'<tr data-template="autumn_sale" data-language="ru">(.*?)</tr>', table, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:9] == [["autumn_sale"], ["ru"], ["MARKETING"], ["5"], ["4"], ["3", "75.0%"], ["2", "50.0%"],
                         ["2", "50.0%"], ["1", "20.0%"]]
    assert "0.255000 USD" in row and "0.127500 USD" in row
    assert "within 24 hours after it" in table, "the definition beside the table"
    broadcasts = card(text, "report-broadcasts")
    assert f'data-broadcast="{sent["broadcast"]}"' in broadcasts and "Autumn sale" in broadcasts
    assert f'/admin/broadcasts/{sent["broadcast"]}"' in broadcasts


def test_an_empty_period_says_so(viewer, sent):  # noqa: F811
    text = viewer.get("/admin/reports", query_string={"from": "2026-10-01", "to": "2026-10-07"}).get_data(
        as_text=True)
    assert "No template messages in the period." in card(text, "report-templates")
    assert "No broadcast messages in the period." in card(text, "report-broadcasts")


def test_the_funnels_speak_russian(viewer, sent):  # noqa: F811
    viewer.get("/admin/language/ru?next=/admin/")
    text = viewer.get("/admin/reports", query_string=WEEK).get_data(as_text=True)
    assert "Воронки шаблонов" in text and "Ответили" in text
