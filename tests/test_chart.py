"""The server-drawn cost/tokens chart."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from prompts_app.charts import DayPoint, cost_tokens_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


def points(costs: list[int]) -> list[DayPoint]:
    start = dt.date(2026, 11, 1)
    return [DayPoint(start + dt.timedelta(days=i), cost, cost // 10, i, 0) for i, cost in enumerate(costs)]


def test_there_is_one_bar_per_day_with_its_figures_in_the_tooltip():
    svg = str(cost_tokens_chart(points([1_500_000_000, 0, 250_000_000])))
    root = ET.fromstring(svg)
    days = root.findall(f"{SVG}g")
    assert [g.get("data-day") for g in days] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    titles = [g.find(f"{SVG}title").text for g in days]
    assert titles[0] == "2026-11-01: $1.50 · 150,000,000 tokens · 0 runs"
    assert titles[1].startswith("2026-11-02: $0.00")


def test_a_day_without_runs_is_a_zero_height_bar_not_a_missing_one():
    root = ET.fromstring(str(cost_tokens_chart(points([100, 0, 100]))))
    bars = [g.find(f"{SVG}rect[@class='bar']") for g in root.findall(f"{SVG}g")]
    assert [float(b.get("height")) > 0 for b in bars] == [True, False, True]


def test_the_tallest_bar_fits_the_axis_and_axis_labels_are_money_and_tokens():
    svg = str(cost_tokens_chart(points([3_000_000_000, 1_000_000_000])))
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert 0 < heights[1] < heights[0] <= 280
    assert ">$4.00<" in svg and ">$0.00<" in svg  # nice axis top above $3
    assert ">400M<" in svg  # tokens axis, compact


def test_the_chart_is_accessible_and_escapes_text():
    svg = str(cost_tokens_chart(points([5]), label='Costs <for> "A&B"'))
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label").startswith('Costs <for> "A&B": $0.000000005')
    assert root.find(f"{SVG}title").text == root.get("aria-label")


def test_an_empty_period_still_draws_axes():
    root = ET.fromstring(str(cost_tokens_chart([])))
    assert root.findall(f"{SVG}g") == [] and root.findall(f"{SVG}line")


def test_nice_ceiling_rounds_up_to_a_1_2_5_step():
    assert nice_ceiling(3.1e9) == (4e9, 1e9)
    assert nice_ceiling(0) == (4.0, 1.0)
    assert nice_ceiling(7) == (8, 2)
