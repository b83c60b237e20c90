"""Server-drawn SVG charts: markup only, no JavaScript, readable by screen readers."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from prompts_app.pricing import format_usd

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 78, 70, 34, 42


@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    cost_nano: int
    tokens: int
    runs: int
    unpriced_runs: int = 0


def nice_ceiling(value: float, steps: int = 4) -> tuple[float, float]:
    """(axis maximum, step) with a 1-2-5 step, so tick labels are round numbers."""
    if value <= 0:
        return float(steps), 1.0
    raw = value / steps
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * steps, step


def compact(n: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{n:,.0f}"


def day_title(p: DayPoint) -> str:
    unpriced = f" · {p.unpriced_runs:,} unpriced" if p.unpriced_runs else ""
    return f"{p.day.isoformat()}: {format_usd(p.cost_nano)} · {p.tokens:,} tokens · {p.runs:,} runs{unpriced}"


def cost_tokens_chart(points: Sequence[DayPoint], *, label: str = "Cost and tokens per day") -> SafeString:
    """Bars for cost per day (left axis), a line for tokens per day (right axis).

    Every day of the period gets a slot, so days without runs show as gaps at zero.
    Each day has a `<title>` tooltip with its exact figures.
    """
    n = max(len(points), 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    cost_max, cost_step = nice_ceiling(max((p.cost_nano for p in points), default=0))
    tok_max, tok_step = nice_ceiling(max((p.tokens for p in points), default=0))
    total_cost = sum(p.cost_nano for p in points)
    total_tokens = sum(p.tokens for p in points)
    summary = f"{label}: {format_usd(total_cost)} and {total_tokens:,} tokens over {len(points)} days"
    base_y = TOP + plot_h

    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(summary)}</title>",
    ]
    for i in range(5):  # gridlines with both axes' labels
        y = base_y - plot_h * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis cost" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_usd(round(cost_step * i)))}</text>"
        )
        out.append(
            f'<text class="axis tokens" x="{WIDTH - RIGHT + 8}" y="{y + 4:.1f}">{escape(compact(tok_step * i))}</text>'
        )
    out.append(f'<text class="axis-title cost" x="{LEFT - 8}" y="{TOP - 16}" text-anchor="end">cost</text>')
    out.append(f'<text class="axis-title tokens" x="{WIDTH - RIGHT + 8}" y="{TOP - 16}">tokens</text>')

    label_every = max(1, math.ceil(n / 12))
    line: list[str] = []
    for i, p in enumerate(points):
        x = LEFT + slot * i
        h = plot_h * p.cost_nano / cost_max
        bar_w = max(slot * 0.7, 1)
        out.append(f'<g class="day" data-day="{p.day.isoformat()}"><title>{escape(day_title(p))}</title>')
        out.append(f'<rect class="hit" x="{x:.1f}" y="{TOP}" width="{slot:.1f}" height="{plot_h}"/>')
        out.append(
            f'<rect class="bar" x="{x + (slot - bar_w) / 2:.1f}" y="{base_y - h:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}"/></g>'
        )
        line.append(f"{x + slot / 2:.1f},{base_y - plot_h * p.tokens / tok_max:.1f}")
        if i % label_every == 0:
            out.append(
                f'<text class="axis day" x="{x + slot / 2:.1f}" y="{base_y + 18}" text-anchor="middle">'
                f"{p.day.strftime('%b')} {p.day.day}</text>"
            )
    if line:
        out.append(f'<polyline class="tokens-line" points="{" ".join(line)}"/>')
    out.append(f'<line class="axis-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base_y}" y2="{base_y}"/>')
    out.append("</svg>")
    return mark_safe("\n".join(out))
