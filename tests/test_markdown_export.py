"""The Markdown export treats every name, title, input and output as text: nothing a user
typed (or Maxim returned) can become a link, an image, HTML, a heading or a broken table."""

from __future__ import annotations

import re

import pytest

from prompts_app.services import compare_report as report
from tests.conftest import add_run

HOSTILE = "![pixel](https://evil.example/t.png) <img src=x> *bold* _it_ [link](https://evil.example) | cell & `tick` #tag ~~s~~"


def unescaped(text: str, char: str) -> int:
    """How many times `char` occurs in `text` without a backslash before it."""
    return len(re.findall(r"(?<!\\)" + re.escape(char), text))


@pytest.fixture
def hostile(comparison):  # noqa: F811
    comparison.title = "Review\n# Injected heading " + HOSTILE
    comparison.input = {
        "turns": [{"role": "user", "content": HOSTILE}, {"role": "user", "content": "line one\n```\n# not a heading"}],
        "variables": {"name": "Ann\n- item " + HOSTILE},
    }
    comparison.save()
    comparison.workspace.name = "Acme <script>alert(1)</script>"
    comparison.workspace.save()
    prompt = comparison.columns.first().version.prompt
    prompt.name = "Support | reply\nwith *stars*"
    prompt.save()
    a = comparison.columns.first()
    add_run(comparison, a, 0, text="Output with ````` five ticks and\n```\n# heading")
    return comparison


def test_text_outside_fences_has_no_live_markdown_or_html(hostile):
    text = report.export_markdown(hostile)
    outside = re.sub(r"(?ms)^( *)(`{3,})\n.*?^\1\2$", "", text)  # drop fenced blocks
    for char in ["[", "*", "_", "`", "&", "~"]:
        assert unescaped(outside, char) == 0, (char, outside)
    assert unescaped(outside, "<") == outside.count("<br>")  # our own line breaks are the only tags
    headings = [line for line in outside.splitlines() if line.startswith("#")]
    assert headings == [line for line in headings if re.match(r"^(# Review|## \d+\. )", line)], (
        headings
    )  # only the title and one heading per column start a line with #
    assert "<script>" not in text and "![pixel]" not in text


def test_table_rows_keep_their_column_count_and_one_line(hostile):
    text = report.export_markdown(hostile)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) >= 4
    assert {unescaped(row, "|") for row in rows} == {9}  # 8 columns
    assert any("Support \\| reply<br>with \\*stars\\* v1" in row for row in rows)


def test_outputs_and_multiline_inputs_sit_in_fences_longer_than_any_backtick_run(hostile):
    text = report.export_markdown(hostile)
    assert "``````\nOutput with ````` five ticks and\n```\n# heading\n``````" in text
    assert "- user:\n\n  ````\n  line one\n  ```\n  # not a heading\n  ````" in text


def test_a_plain_comparison_still_reads_naturally(comparison):  # noqa: F811
    a = comparison.columns.first()
    add_run(comparison, a, 0, text="fine")
    text = report.export_markdown(comparison)
    assert text.startswith("# T\n\nWorkspace: Acme\n")
    assert "Input:\n\n- user: Hi\n" in text
    assert "| 1 | Support reply v1 | gpt-4o | openai | 10/5 |" in text


def test_an_input_of_variables_only_has_no_empty_input_heading(comparison):  # noqa: F811
    # New-user trial: a comparison run with its variables only exported "Input:" over nothing.
    comparison.input = {"turns": [], "variables": {"product": "kettle"}}
    comparison.save()
    add_run(comparison, comparison.columns.first(), 0, text="fine")
    text = report.export_markdown(comparison)
    assert "Input:" not in text and "Variables: product=kettle" in text
