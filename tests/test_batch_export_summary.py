"""A batch's Markdown export opens with the page's summary per column (issue #12: "one summary row per
column: pass rate, cost total and per 1,000 runs, tokens, latency p50/p95, failures"); the new-user
trial found the Markdown had the cells only."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from prompts_app.models import BatchColumn, Run
from tests.batch_seed import seed

pytestmark = pytest.mark.django_db


def markdown_of(client, batch) -> str:
    response = client.get(reverse("batch_export_md", args=[batch.pk]))
    return b"".join(response.streaming_content).decode()


def page_summary(client, batch) -> list[list[str]]:
    """The page's summary table, cell texts per row, as a person reads them."""
    page = client.get(reverse("batch_detail", args=[batch.pk])).content.decode()
    table = page[page.index('aria-label="Summary per column"') :].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL) for row in rows]
    return [[html.unescape(re.sub(r"\s+", " ", re.sub("<[^>]+>", "", c))).strip() for c in row] for row in cells]


def summary_lines(markdown: str) -> list[list[str]]:
    part = markdown.split("## Summary per column\n\n")[1].split("\n\n")[0]
    lines = part.strip().split("\n")
    assert lines[0] == "| column | pass rate | cost | per 1,000 runs | tokens | latency p50 | p95 | failures |"
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def test_the_markdown_opens_with_the_pages_summary_row_per_column(client_for, editor, workspace, prompt):
    batch = seed(workspace, prompt, editor, cases=4, failing={1: {2}, 2: {1, 3}})
    client = client_for(editor)
    markdown = markdown_of(client, batch)
    assert summary_lines(markdown) == page_summary(client, batch)
    assert summary_lines(markdown)[0][:2] == ["1. Reply v1", "75% (3/4)"]
    assert markdown.index("## Summary per column") < markdown.index("## Cells") < markdown.index("| case |")


def test_an_unpriced_column_is_unpriced_in_the_summary_never_0(client_for, editor, workspace, prompt):
    batch = seed(workspace, prompt, editor, cases=2, failing={})
    Run.objects.filter(batch_comparison=batch, version__number=2).update(cost_nano=None)
    client = client_for(editor)
    second = summary_lines(markdown_of(client, batch))[1]
    assert second[2:4] == ["unpriced", "unpriced"] and "$0" not in " ".join(second)
    assert summary_lines(markdown_of(client, batch)) == page_summary(client, batch)


def test_a_column_label_cannot_break_the_summary_table(client_for, editor, workspace, prompt):
    batch = seed(workspace, prompt, editor, cases=1, failing={})
    BatchColumn.objects.filter(batch=batch, position=1).update(label="A | B\n| forged | row |")
    rows = summary_lines(markdown_of(client_for(editor), batch))
    assert len(rows) == 2 and rows[0][0] == r"1. A \| B<br>\| forged \| row \|"


def test_markdown_export_escapes_what_a_model_wrote_so_nothing_renders_as_markup():
    """A model's output such as ![](https://tracker/p.png) must not load an image when the export
    is viewed; the batch export escapes it as the comparison export does."""
    from prompts_app.batch_export import _md

    assert _md("![x](https://tracker.example/p.png) | <img src=x> # h") == (
        "!\\[x\\](https://tracker.example/p.png) \\| \\<img src=x\\> \\# h"
    )
