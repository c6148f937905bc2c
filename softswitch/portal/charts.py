"""Bar charts drawn on the server: the geometry of an inline SVG and the table behind it.

The portal loads nothing from the Internet and runs no chart library: a chart is a few
``<rect>`` elements placed here and drawn by ``templates/chart.html``, which also gives it a
title (``role="img"`` with ``aria-labelledby``) and its data as a table, for screen readers
and for anyone who would rather read the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HEIGHT", "WIDTH", "Bar", "BarChart", "Tick", "bar_chart"]

WIDTH, HEIGHT = 640, 220  # the viewBox; the SVG scales to its column's width
_LEFT, _BOTTOM, _TOP, _RIGHT = 44, 34, 10, 8  # room for the axis labels


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its box in viewBox units, its label and the value it shows."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: float
    text: str  # the value as the table and the tooltip show it
    show_label: bool  # whether the axis has room for this bar's label


@dataclass(frozen=True, slots=True)
class Tick:
    """A horizontal grid line of the value axis."""

    y: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    """A titled bar chart: ``bars`` to draw, ``rows`` (label, value text) for the table."""

    ident: str
    title: str
    unit: str
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    rows: tuple[tuple[str, str], ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    baseline: float = HEIGHT - _BOTTOM

    @property
    def empty(self) -> bool:
        return not any(b.value for b in self.bars)

    @property
    def summary(self) -> str:
        """One sentence for the SVG's description: the total and the largest bar."""
        if self.empty:
            return f"{self.title}: nothing in this period."
        top = max(self.bars, key=lambda b: b.value)
        return f"{self.title}: highest {top.text} {self.unit} at {top.label}."


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10 * power


def _text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def bar_chart(
    ident: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    unit: str = "",
    max_labels: int = 12,
) -> BarChart:
    """The chart of ``values`` (one bar per label, in order); ``ident`` is the element id."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    top = _nice_top(max(values, default=0.0))
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(values), 1)
    every = max(1, math.ceil(len(values) / max_labels))
    bars = tuple(
        Bar(
            x=round(_LEFT + i * slot + slot * 0.1, 2),
            y=round(_TOP + plot_h * (1 - v / top), 2),
            width=round(slot * 0.8, 2),
            height=round(plot_h * v / top, 2),
            label=label,
            value=v,
            text=_text(v),
            show_label=i % every == 0,
        )
        for i, (label, v) in enumerate(zip(labels, values, strict=True))
    )
    ticks = tuple(
        Tick(y=round(_TOP + plot_h * (1 - f), 2), text=_text(top * f)) for f in (0, 0.5, 1)
    )
    rows = tuple((b.label, b.text) for b in bars)
    return BarChart(ident, title, unit, bars, ticks, rows)
