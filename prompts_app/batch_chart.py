"""A batch's cost against pass rate, one dot per column: server-drawn SVG like charts.py."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from prompts_app.charts import nice_ceiling
from prompts_app.pricing import format_usd

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 78, 30, 24, 44


def not_drawn(points: Sequence[tuple[int, str, int | None, float | None]]) -> str:
    """The columns the chart leaves out and why, said under it (the SVG's title is not seen)."""
    reasons = [
        f"{n}. {label} ({'no priced run yet' if cost is None else 'no checked result yet'})"
        for n, label, cost, rate in points
        if cost is None or rate is None
    ]
    return f"Not drawn: {', '.join(reasons)}." if reasons else ""


def cost_pass_chart(points: Sequence[tuple[int, str, int | None, float | None]]) -> SafeString:
    """points: (column number, label, cost per 1,000 runs in nano-USD or None, pass rate 0-1 or None).
    Columns without a price or without checks are named in the caption, not drawn at $0."""
    drawn = [(n, label, cost, rate) for n, label, cost, rate in points if cost is not None and rate is not None]
    left_out = [label for _, label, cost, rate in points if cost is None or rate is None]
    cost_max, cost_step = nice_ceiling(max((cost for _, _, cost, _ in drawn), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    summary = "Cost per 1,000 runs against pass rate: " + "; ".join(
        f"{n}. {label}: {format_usd(cost)}, {rate:.0%}" for n, label, cost, rate in drawn
    )
    if left_out:
        summary += ". Not drawn (unpriced or no checks): " + ", ".join(left_out)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(summary)}</title>",
    ]
    base_y = TOP + plot_h
    for i in range(5):
        y = base_y - plot_h * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{25 * i}%</text>')
        if not drawn:
            continue  # no scale for cost yet (no finished, priced, checked column): no $0.000000001 ticks
        x = LEFT + plot_w * i / 4
        # The last tick's text ends at the edge, inside the picture; the first one starts at the
        # origin, right of the pass-rate labels (centred there, "$0.00" ran into "0%": new-user trial).
        anchor = "end" if i == 4 else "start" if i == 0 else "middle"
        out.append(
            f'<text class="axis" x="{x:.1f}" y="{base_y + 18}" text-anchor="{anchor}">'
            f"{escape(format_usd(round(cost_step * i)))}</text>"
        )
    out.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        "cost per 1,000 runs</text>"
    )
    middle = TOP + plot_h / 2  # the y axis named too (new-user trial: its percentages said nothing of what)
    out.append(
        f'<text class="axis-title" x="18" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {middle:.1f})">pass rate</text>'
    )
    for n, label, cost, rate in drawn:
        x, y = LEFT + plot_w * cost / cost_max, base_y - plot_h * rate
        out.append(
            f'<g class="point"><title>{escape(label)}: {escape(format_usd(cost))} per 1,000 runs, '
            f'{rate:.0%} passed</title><circle cx="{x:.1f}" cy="{y:.1f}" r="6"/>'
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}">{n}</text></g>'
        )
    out.append("</svg>")
    return mark_safe("\n".join(out))
