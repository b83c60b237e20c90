"""The cost-against-pass-rate picture of a batch: what it draws and what it leaves out."""

from __future__ import annotations

import re

from prompts_app.batch_chart import cost_pass_chart


def ticks(svg: str) -> list[str]:
    """The cost axis's labels (the pass-rate axis's end in %)."""
    return re.findall(r'<text class="axis"[^>]*>(\$[^<]*)</text>', svg)


def test_columns_are_drawn_at_their_cost_and_pass_rate_and_the_last_tick_stays_inside():
    svg = str(cost_pass_chart([(1, "Reply v1", 2_000_000, 0.5), (2, "Reply v2", 4_000_000, 1.0)]))
    assert "1. Reply v1: $0.002, 50%; 2. Reply v2: $0.004, 100%" in svg
    assert len(ticks(svg)) == 5 and svg.count('<circle') == 2
    assert re.search(r'text-anchor="end">\$[0-9.]+</text>', svg)  # the rightmost cost label ends at the edge


def test_before_any_column_has_a_price_and_checks_there_is_no_cost_scale():
    """Just after a batch starts (found by the new-user trial: ticks of $0.000000001 ran off the edge)."""
    svg = str(cost_pass_chart([(1, "Reply v1", None, None), (2, "Reply v2", 5, None)]))
    assert ticks(svg) == [] and "<circle" not in svg
    assert "Not drawn (unpriced or no checks): Reply v1, Reply v2" in svg
