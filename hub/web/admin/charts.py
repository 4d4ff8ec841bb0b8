"""Charts drawn on the server as inline SVG: data in, markup out.

The admin's Content-Security-Policy allows no inline style or script, so the charts use
SVG presentation attributes (fill, font-size) only, and need no JavaScript. Every text
that comes from data (an operator's e-mail, a UTM source) is escaped; every bar carries
data-label and data-value (for tests and screen readers, beside its <title> tooltip)
and may link to the conversations behind it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

from hub.reports.grouping import nice_max as _nice_max

ACCENT = "#1a66d6"
INK = "#374151"
MUTED = "#6b7280"
GRID = "#e5e7eb"
FONT = "ui-sans-serif, system-ui, sans-serif"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    href: str | None = None


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else str(int(value))


def _attrs(**values: object) -> str:
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in values.items())


def _linked(bar: Bar, inner: str) -> str:
    return f'<a href="{escape(bar.href)}">{inner}</a>' if bar.href else inner


def _open(width: int, height: int, title: str, kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{escape(kind)}" '
            f'{_attrs(viewBox=f"0 0 {width} {height}", width=width, height=height, role="img", aria_label=title)} '
            f'font-family="{FONT}" font-size="11"><title>{escape(title)}</title>')


def horizontal_bars(bars: Sequence[Bar], *, title: str, width: int = 520, row: int = 24,
                    label_width: int = 170) -> Markup:
    """One row per item, longest bar = the largest value; label left, value right."""
    height = max(row * len(bars), row) + 8
    top = max((b.value for b in bars), default=0) or 1
    track = width - label_width - 56
    parts = [_open(width, height, title, "bars")]
    if not bars:
        parts.append(f'<text x="{width // 2}" y="{row}" text-anchor="middle" fill="{MUTED}">—</text>')
    for i, bar in enumerate(bars):
        y = 4 + i * row
        length = round(track * bar.value / top, 1)
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        tip = f"{bar.label}: {_number(bar.value)}"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row / 2 + 4}" text-anchor="end" fill="{INK}">{escape(label)}</text>'
            + _linked(bar, f'<rect class="bar" {_attrs(x=label_width, y=y + 3, width=max(length, 1), height=row - 8)}'
                           f' rx="3" fill="{ACCENT}" data-label="{escape(bar.label)}" '
                           f'data-value="{_number(bar.value)}"><title>{escape(tip)}</title></rect>')
            + f'<text x="{label_width + length + 6}" y="{y + row / 2 + 4}" fill="{MUTED}">{_number(bar.value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(bars: Sequence[Bar], *, title: str, width: int = 720, height: int = 220,
            every: int | None = None) -> Markup:
    """Vertical bars over a category axis (days, hours, histogram buckets) with a value
    axis at 0, half and the top; `every` labels one column in so many (all by default,
    thinned out when they would collide)."""
    left, right, top_pad, bottom = 36, 8, 12, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = float(_nice_max(max((b.value for b in bars), default=0)))
    n = max(len(bars), 1)
    slot = plot_w / n
    gap = min(slot * 0.2, 6)
    every = every or max(1, -(-n * 46 // plot_w))  # ~46 px per label
    parts = [_open(width, height, title, "columns")]
    for fraction in (0, 0.5, 1) if (top / 2).is_integer() else (0, 1):
        y = round(top_pad + plot_h * (1 - fraction), 1)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="{GRID}"/>'
                     f'<text x="{left - 5}" y="{y + 4}" text-anchor="end" fill="{MUTED}">'
                     f'{_number(top * fraction)}</text>')
    for i, bar in enumerate(bars):
        h = round(plot_h * bar.value / top, 1)
        x = round(left + i * slot + gap / 2, 1)
        tip = f"{bar.label}: {_number(bar.value)}"
        parts.append(_linked(bar, f'<rect class="bar" {_attrs(x=x, y=round(top_pad + plot_h - h, 1))} '
                                  f'{_attrs(width=round(slot - gap, 1), height=h)} rx="2" fill="{ACCENT}" '
                                  f'data-label="{escape(bar.label)}" data-value="{_number(bar.value)}">'
                                  f'<title>{escape(tip)}</title></rect>'))
        if i % every == 0:
            parts.append(f'<text x="{round(x + (slot - gap) / 2, 1)}" y="{height - bottom + 16}" '
                         f'text-anchor="middle" fill="{INK}">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
