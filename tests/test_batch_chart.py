"""The cost-against-pass-rate picture of a batch: what it draws and what it leaves out."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from prompts_app.batch_chart import cost_pass_chart, not_drawn
from prompts_app.services import batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import drive_batch


def ticks(svg: str) -> list[str]:
    """The cost axis's labels (the pass-rate axis's end in %)."""
    return re.findall(r'<text class="axis"[^>]*>(\$[^<]*)</text>', svg)


def test_columns_are_drawn_at_their_cost_and_pass_rate_and_the_last_tick_stays_inside():
    svg = str(cost_pass_chart([(1, "Reply v1", 2_000_000, 0.5), (2, "Reply v2", 4_000_000, 1.0)]))
    assert "1. Reply v1: $0.002, 50%; 2. Reply v2: $0.004, 100%" in svg
    assert len(ticks(svg)) == 5 and svg.count("<circle") == 2
    assert re.search(r'text-anchor="end">\$[0-9.]+</text>', svg)  # the rightmost cost label ends at the edge


def test_before_any_column_has_a_price_and_checks_there_is_no_cost_scale():
    """Just after a batch starts (found by the new-user trial: ticks of $0.000000001 ran off the edge)."""
    svg = str(cost_pass_chart([(1, "Reply v1", None, None), (2, "Reply v2", 5, None)]))
    assert ticks(svg) == [] and "<circle" not in svg
    assert "Not drawn (unpriced or no checks): Reply v1, Reply v2" in svg


def test_the_caption_says_which_columns_are_left_out_and_why():
    said = not_drawn([(1, "Reply v1", None, None), (2, "Reply v2", 5, None), (3, "Reply v3", 5, 0.5)])
    assert said == "Not drawn: 1. Reply v1 (no priced run yet), 2. Reply v2 (no checked result yet)."


@pytest.mark.usefixtures("batch_inline")
@pytest.mark.parametrize("checks", [[], [{"type": "contains", "value": "Ada"}]])
def test_a_batch_without_checks_says_why_it_has_no_chart_instead_of_empty_axes(
    client_for, editor, workspace, batch_test_set, two_versions, echo_maxim, checks
):
    """New-user trial: a batch with no checks drew the chart's empty axes, without a word why."""
    batch = batches.start_batch(
        workspace=workspace,
        test_set=batch_test_set,
        columns=[ColumnChoice(v) for v in two_versions],
        user=editor,
        checks=checks,
    )
    drive_batch(batch)
    page = client_for(editor).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    said = "this batch has no checks, so its columns have no pass rate"
    if checks:
        assert page.count("<circle") == 2 and said not in page
    else:
        assert '<svg class="chart"' not in page and said in page
        assert "Their cost per 1,000 runs is in the table above" in page


def test_the_origins_labels_stay_apart():
    """New-user trial: "$0.00", centred on the origin, ran into the "0%" that ends just left of it."""
    svg = str(cost_pass_chart([(1, "Reply v1", 2_000_000, 0.5)]))
    rate = re.search(r'<text class="axis" x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)">0%</text>', svg)
    cost = re.search(r'<text class="axis" x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)">\$0\.00</text>', svg)
    assert rate[2] == "end" and cost[2] == "start"  # "0%" ends left of where "$0.00" begins
    assert float(cost[1]) - float(rate[1]) >= 8


def test_both_axes_say_what_they_measure():
    """New-user trial: the vertical axis's percentages had no title."""
    svg = str(cost_pass_chart([(1, "Reply v1", 2_000_000, 0.5)]))
    titles = re.findall(r'<text class="axis-title"([^>]*)>([^<]+)</text>', svg)
    assert [text for _, text in titles] == ["cost per 1,000 runs", "pass rate"]
    assert "rotate(-90" in titles[1][0]  # read bottom to top, beside the percentages
