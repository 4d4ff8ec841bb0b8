"""The report e-mails' PNG charts (hub.reports.charts_png): they decode with the size
asked for, draw one bar per item of the data, and set Cyrillic labels in DejaVu Sans
(Pillow's own font when it is missing)."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from hub.reports import charts_png, mail, metrics
from hub.reports.grouping import per_slot, slot_of, slots

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def _runs(flags: list[bool]) -> int:
    """How many separate stretches of True."""
    return sum(1 for i, flag in enumerate(flags) if flag and (i == 0 or not flags[i - 1]))


def columns_drawn(png: bytes) -> int:
    image = _image(png)
    width, height = image.size
    pixels = image.load()
    return _runs([any(pixels[x, y] == charts_png.ACCENT for y in range(height)) for x in range(width)])


def rows_drawn(png: bytes) -> int:
    image = _image(png)
    width, height = image.size
    pixels = image.load()
    return _runs([any(pixels[x, y] == charts_png.ACCENT for x in range(width)) for y in range(height)])


@pytest.mark.parametrize("values", [[3, 0, 7, 12, 5, 1, 9], [1], list(range(31)), [0, 0, 0]])
def test_columns_decode_at_their_size_with_one_bar_per_value(values):
    png = charts_png.columns([(f"d{i}", v) for i, v in enumerate(values)], title="Conversations per day")
    assert _image(png).size == (600, 240)
    assert columns_drawn(png) == len(values), "a zero is a one-pixel bar, still counted"
    assert _image(charts_png.columns([("a", 1)], title="t", width=320, height=160)).size == (320, 160)


def test_taller_columns_for_larger_values():
    image = _image(charts_png.columns([("a", 2), ("b", 8)], title="t"))
    pixels = image.load()

    def height_at(x: int) -> int:
        return sum(pixels[x, y] == charts_png.ACCENT for y in range(image.size[1]))

    left, right = [x for x in range(image.size[0]) if height_at(x)][0], [x for x in range(image.size[0])
                                                                         if height_at(x)][-1]
    assert height_at(right) == pytest.approx(4 * height_at(left), rel=0.05)


@pytest.mark.parametrize("count", [0, 1, 4, 12])
def test_horizontal_bars_decode_with_one_bar_per_item(count):
    bars = [(f"оператор{i}@пример.рф", i + 1) for i in range(count)]
    png = charts_png.horizontal_bars(bars, title="Разговоры по операторам")
    assert _image(png).size == (600, charts_png.TITLE_HEIGHT + 4 + 24 * max(count, 1) + 8)
    assert rows_drawn(png) == count


def test_cyrillic_is_set_in_dejavu_sans_when_the_system_has_it():
    if not charts_png.FONT_PATH.exists():
        pytest.skip("fonts-dejavu-core is not installed (make fonts)")
    face = charts_png.font(12)
    assert face.getname()[0] == "DejaVu Sans"

    def drawn(text: str) -> bytes:
        from PIL import ImageDraw

        image = Image.new("L", (40, 24), 0)
        ImageDraw.Draw(image).text((4, 4), text, fill=255, font=face)
        return image.tobytes()

    box = drawn("\ue000")  # private use: DejaVu has no glyph, so its "missing" box is drawn
    letters = [drawn(letter) for letter in "ЖЩЯж"]
    assert all(any(letter) for letter in letters), "ink for each letter"
    assert box not in letters and len(set(letters)) == 4, "real glyphs, not the missing-glyph box"


def test_without_dejavu_the_charts_fall_back_to_pillows_font(monkeypatch, tmp_path):
    monkeypatch.setattr(charts_png, "FONT_PATH", tmp_path / "no-such-font.ttf")
    charts_png.font.cache_clear()
    try:
        assert "DejaVu" not in str(getattr(charts_png.font(12), "getname", lambda: ("bitmap",))()[0])
        png = charts_png.horizontal_bars([("Мария", 3), ("Олег", 1)], title="Операторы")
        assert rows_drawn(png) == 2
        assert columns_drawn(charts_png.columns([("<30 s", 1), (">1 h", 2)], title="t")) == 2
    finally:
        charts_png.font.cache_clear()


def test_slots_and_grouping_are_the_dashboards():
    days, step = slots(T0, T0 + timedelta(days=7))
    assert len(days) == 7 and step == timedelta(days=1)
    assert slot_of(T0, step, T0 + timedelta(days=2, hours=23)) == T0 + timedelta(days=2)
    counts = per_slot(T0, T0 + timedelta(days=7), [T0, T0 + timedelta(hours=1), T0 + timedelta(days=6, hours=5)])
    assert [n for _at, n in counts] == [2, 0, 0, 0, 0, 0, 1]
    hours, step = slots(T0, T0 + timedelta(days=1))
    assert len(hours) == 24 and step == timedelta(hours=1)


def test_the_emails_charts_follow_the_figures():
    figures = {"by_operator": [{"operator": "мария@пример.рф", "conversations": 3, "replies": 5},
                               {"operator": "(unassigned)", "conversations": 1, "replies": 0}]}
    histogram = metrics.histogram([10, 40, 45, 4000])
    end = T0 + timedelta(days=7)
    found = mail.report_charts(figures, start=T0, end=end, per_slot=per_slot(T0, end, [T0]),
                               first_response_histogram=histogram)
    assert [c.key for c in found] == ["per_slot", "first_response", "operators"]
    per_day, buckets, operators = found
    assert per_day.title == "Conversations per day" and [label for label, _n in per_day.bars][:2] == ["11-23", "11-24"]
    assert columns_drawn(per_day.png) == 7 and per_day.size == _image(per_day.png).size
    assert [label for label, _n in buckets.bars] == [label for _bound, label in metrics.BUCKETS]
    assert columns_drawn(buckets.png) == 7 and dict(buckets.bars)["30 s-2 min"] == 2
    assert rows_drawn(operators.png) == 2
    daily = mail.report_charts({}, start=T0, end=T0 + timedelta(days=1), per_slot=per_slot(T0, T0 + timedelta(days=1), []),
                               first_response_histogram=metrics.histogram([]))
    assert daily[0].title == "Conversations per hour" and columns_drawn(daily[0].png) == 24
