"""The report e-mails' charts as PNG (e-mail clients do not render SVG): data in, bytes
out, drawn with Pillow in the admin charts' colours and shapes (hub.web.admin.charts).

Labels are operators' names and e-mails, teams, UTM sources: Cyrillic among them, so
the text is set in DejaVu Sans (Debian's fonts-dejavu-core, `make fonts`); without it
Pillow's own font is used and the bars are still right. Every bar is drawn at least
one pixel long, so a zero still shows where its slot is.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from hub.reports.grouping import nice_max

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
ACCENT = (26, 102, 214)
INK = (55, 65, 81)
MUTED = (107, 114, 128)
GRID = (229, 231, 235)
BACKGROUND = (255, 255, 255)
TITLE_HEIGHT = 26

Bars = Sequence[tuple[str, float]]


@lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when the system has it (Cyrillic included), else Pillow's default."""
    try:
        return ImageFont.truetype(str(FONT_PATH), size)
    except OSError:
        try:
            return ImageFont.load_default(size)
        except TypeError:  # Pillow without FreeType: the bitmap font, one size
            return ImageFont.load_default()


def number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else str(int(value))


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float, face) -> str:
    """The text, cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def _canvas(width: int, height: int, title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), _fit(draw, title, width - 16, font(14)), fill=INK, font=font(14))
    return image, draw


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def columns(bars: Bars, *, title: str, width: int = 600, height: int = 240, every: int | None = None) -> bytes:
    """Vertical bars over a category axis (days, hours, histogram buckets) with a value
    axis at 0, half and the top; `every` labels one column in so many (all by default,
    thinned out when they would collide)."""
    left, right, top_pad, bottom = 40, 10, TITLE_HEIGHT + 8, 30
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = float(nice_max(max((value for _label, value in bars), default=0)))
    n = max(len(bars), 1)
    slot = plot_w / n
    gap = max(1.0, min(slot * 0.2, 6))
    image, draw = _canvas(width, height, title)
    small = font(11)
    longest = max((draw.textlength(label, font=small) for label, _value in bars), default=0) + 8
    every = every or max(1, -(-int(n * longest) // plot_w))
    baseline = top_pad + plot_h
    for fraction in (0, 0.5, 1) if (top / 2).is_integer() else (0, 1):
        y = round(top_pad + plot_h * (1 - fraction))
        draw.line([(left, y), (width - right, y)], fill=GRID)
        draw.text((left - 5, y), number(top * fraction), fill=MUTED, font=small, anchor="rm")
    for i, (label, value) in enumerate(bars):
        h = max(1, round(plot_h * value / top))
        x0 = round(left + i * slot + gap / 2)
        x1 = max(x0, round(left + (i + 1) * slot - gap / 2) - 1)
        draw.rectangle([(x0, baseline - h), (x1, baseline - 1)], fill=ACCENT)
        text = number(value)
        if draw.textlength(text, font=small) + 2 <= x1 - x0:  # no tooltips in an e-mail: the value on top
            draw.text(((x0 + x1) / 2, baseline - h - 3), text, fill=MUTED, font=small, anchor="mb")
        if i % every == 0:
            draw.text(((x0 + x1) / 2, baseline + 6), _fit(draw, label, slot * every - 4, small), fill=INK,
                      font=small, anchor="mt")
    return _png(image)


def horizontal_bars(bars: Bars, *, title: str, width: int = 600, row: int = 24, label_width: int = 200) -> bytes:
    """One row per item, the longest bar = the largest value; label left, value right."""
    top_pad = TITLE_HEIGHT + 4
    height = top_pad + max(row * len(bars), row) + 8
    top = max((value for _label, value in bars), default=0) or 1
    track = width - label_width - 56
    image, draw = _canvas(width, height, title)
    small = font(12)
    if not bars:
        draw.text((width / 2, top_pad + row / 2), "—", fill=MUTED, font=small, anchor="mm")
    for i, (label, value) in enumerate(bars):
        y = top_pad + i * row
        length = max(1, round(track * value / top))
        middle = y + row / 2
        draw.text((label_width - 8, middle), _fit(draw, label, label_width - 16, small), fill=INK, font=small,
                  anchor="rm")
        draw.rectangle([(label_width, y + 4), (label_width + length - 1, y + row - 5)], fill=ACCENT)
        draw.text((label_width + length + 6, middle), number(value), fill=MUTED, font=small, anchor="lm")
    return _png(image)
