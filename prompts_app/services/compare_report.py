"""Reading a comparison: per-column statistics of a batch (loaded by selectors/compare.py),
what differs between the columns' configurations and outputs, and the Markdown export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import escape

from prompts_app.diffing import word_diff as word_diff_html  # the versions page's word diff, shared
from prompts_app.markdown_text import md_cell, md_inline
from prompts_app.models import Comparison, ComparisonColumn, Run
from prompts_app.pricing import format_usd
from prompts_app.selectors.compare import batch_runs, by_column
from prompts_app.services.compare import column_input

# -- reading a comparison ----------------------------------------------------------------


def runs_by_column(comparison: Comparison, runs: list[Run] | None = None) -> dict[int, list[Run]]:
    """The latest batch's runs (or `runs`, the batch as the page loaded it) grouped by column id."""
    return by_column(batch_runs(comparison) if runs is None else runs)


def column_label(column: ComparisonColumn) -> str:
    if column.is_draft:  # comparisons made before drafts were labelled: what its runs were stored against
        return column.label or f"Draft of {column.version.prompt.name} (on v{column.version.number or '?'})"
    return str(column.version)


def column_content(column: ComparisonColumn) -> dict[str, Any]:
    return column.draft_content if column.is_draft else column.version.content()


@dataclass
class ColumnStats:
    runs: int
    finished: int
    distinct_outputs: int
    latency_min: float | None
    latency_avg: float | None
    latency_max: float | None
    cost_per_run_nano: int | None  # None: some run is unpriced (or none succeeded)
    cost_per_1000_nano: int | None
    failures: int
    unpriced: int = 0  # succeeded runs with no known price

    def cost_text(self, nano: int | None) -> str:
        """A cost figure: "unpriced" only when a run that succeeded has no price; "—" while no
        run has succeeded (still running, or every one failed)."""
        return format_usd(nano) if nano is not None or self.unpriced else "—"


def column_stats(runs: list[Run]) -> ColumnStats:
    done = [r for r in runs if r.status != Run.Status.PENDING]
    ok = [r for r in done if r.status == Run.Status.SUCCESS]
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    priced = bool(ok) and all(r.cost_nano is not None for r in ok)
    per_run = round(sum(r.cost_nano for r in ok) / len(ok)) if priced else None
    return ColumnStats(
        runs=len(runs),
        finished=len(done),
        distinct_outputs=len({_output_key(r) for r in ok}),
        latency_min=min(latencies) if latencies else None,
        latency_avg=sum(latencies) / len(latencies) if latencies else None,
        latency_max=max(latencies) if latencies else None,
        cost_per_run_nano=per_run,
        cost_per_1000_nano=per_run * 1000 if per_run is not None else None,
        failures=sum(1 for r in done if r.status != Run.Status.SUCCESS),
        unpriced=sum(1 for r in ok if r.cost_nano is None),
    )


def _output_key(run: Run) -> str:
    return run.output_text + "\x00" + json.dumps(run.tool_calls, sort_keys=True)


# -- configuration differences -------------------------------------------------------------


@dataclass
class ConfigRow:
    field: str
    values: list[str]
    different: bool = field(default=False)


def config_rows(columns: Iterable[ComparisonColumn]) -> list[ConfigRow]:
    """One row per configuration field (provider, model, each parameter, each message, tools,
    and each input turn when every column has its own input), marked different when the
    columns do not all agree."""
    columns = list(columns)
    contents = [column_content(c) for c in columns]
    rows = [
        _row("provider", [c.get("provider", "") for c in contents]),
        _row("model", [c.get("model_name", "") for c in contents]),
    ]
    params = sorted({name for c in contents for name in (c.get("model_parameters") or {})})
    for name in params:
        rows.append(_row(f"parameter: {name}", [_show((c.get("model_parameters") or {}).get(name)) for c in contents]))
    longest = max((len(c.get("messages") or []) for c in contents), default=0)
    for i in range(longest):
        values = []
        for c in contents:
            messages = c.get("messages") or []
            values.append(_message_text(messages[i]) if i < len(messages) else "—")
        rows.append(_row(f"message {i + 1}", values))
    rows.append(_row("tools", [_tools_text(c.get("tools") or []) for c in contents]))
    if columns and not columns[0].comparison.shared_input:
        rows += _input_rows([column_input(c.comparison, c) for c in columns])
    return rows


def _input_rows(inputs: list[dict[str, Any]]) -> list[ConfigRow]:
    turns = [i.get("turns") or [] for i in inputs]
    rows = [
        _row(f"input turn {n + 1}", [_message_text(t[n]) if n < len(t) else "—" for t in turns])
        for n in range(max(len(t) for t in turns))
    ]
    variables = [_variables_line(i) or "—" for i in inputs]
    return [*rows, _row("input variables", variables)]


def _row(name: str, values: list[str]) -> ConfigRow:
    return ConfigRow(field=name, values=values, different=len(set(values)) > 1)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else _show(content)
    extra = f" [tool calls: {_show(message['tool_calls'])}]" if message.get("tool_calls") else ""
    return f"{message.get('role', '?')}: {text}{extra}"


def _tools_text(tools: list[dict[str, Any]]) -> str:
    if not tools:
        return "—"
    return "\n".join(f"{t.get('name')}: {_show(t.get('parameters') or {})}" for t in tools)


# -- output differences against a baseline ----------------------------------------------------


@dataclass
class OutputDiff:
    column: ComparisonColumn
    run: Run | None
    diff_html: str
    token_delta: int | None
    cost_delta_nano: int | None
    latency_delta_ms: float | None
    identical: bool = False
    note: str = ""  # why there is no word diff


def output_diffs(
    comparison: Comparison,
    columns: list[ComparisonColumn],
    baseline: ComparisonColumn,
    runs: list[Run] | None = None,
) -> list[OutputDiff]:
    """Each other column's first run of the latest batch (or of `runs`) against the baseline's."""
    grouped = runs_by_column(comparison, runs)
    base = _first_done(grouped.get(baseline.pk, []))
    diffs = []
    for column in columns:
        if column.pk == baseline.pk:
            continue
        run = _first_done(grouped.get(column.pk, []))
        if run is None or base is None:
            diffs.append(OutputDiff(column, None, "", None, None, None))
            continue
        if run.status != Run.Status.SUCCESS or base.status != Run.Status.SUCCESS:
            # A failed run has no output, tokens, cost or latency worth diffing: say so.
            failed = "this column's run" if run.status != Run.Status.SUCCESS else "the baseline's run"
            note = f"Not compared: {failed} did not succeed."
            diffs.append(OutputDiff(column, run, escape(_shown(run)), None, None, None, note=note))
            continue
        diffs.append(
            OutputDiff(
                column=column,
                run=run,
                diff_html=word_diff_html(_shown(base), _shown(run)),
                token_delta=run.total_tokens - base.total_tokens,
                cost_delta_nano=(
                    run.cost_nano - base.cost_nano if run.cost_nano is not None and base.cost_nano is not None else None
                ),
                latency_delta_ms=(
                    run.latency_ms - base.latency_ms
                    if run.latency_ms is not None and base.latency_ms is not None
                    else None
                ),
                identical=_shown(run) == _shown(base),
            )
        )
    return diffs


def default_baseline(
    comparison: Comparison, columns: list[ComparisonColumn], runs: list[Run] | None = None
) -> ComparisonColumn | None:
    """The first column whose run succeeded or is still running (a failed baseline makes every
    diff noise). A running column keeps its place, so the baseline does not jump when it finishes."""
    grouped = runs_by_column(comparison, runs)
    for column in columns:
        if any(r.status in (Run.Status.SUCCESS, Run.Status.PENDING) for r in grouped.get(column.pk, [])):
            return column
    return columns[0] if columns else None


def _shown(run: Run) -> str:
    return run.output_text if run.status == Run.Status.SUCCESS else f"{run.get_status_display()}: {run.error}"


def _first_done(runs: list[Run]) -> Run | None:
    return next((r for r in runs if r.status != Run.Status.PENDING), None)


# -- Markdown export ---------------------------------------------------------------------------


def export_markdown(comparison: Comparison) -> str:
    """The latest batch as Markdown for a review: a summary table, then each output fenced."""
    columns = list(comparison.columns.select_related("version__prompt"))
    grouped = runs_by_column(comparison)
    lines = [f"# {md_inline(str(comparison))}", "", f"Workspace: {md_inline(comparison.workspace.name)}", ""]
    if comparison.shared_input:
        lines += _input_lines(comparison.input)
    lines += [
        "| # | Column | Model | Provider | Tokens (in/out) | Cost | Latency | Status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, column in enumerate(columns, 1):
        content = column_content(column)
        for run in grouped.get(column.pk, []) or [None]:
            tokens = f"{run.prompt_tokens}/{run.completion_tokens}" if run else "—"
            latency = f"{run.latency_ms:.0f} ms" if run and run.latency_ms is not None else "—"
            cells = [
                str(i),
                column_label(column),
                content.get("model_name", ""),
                content.get("provider", ""),
                tokens,
                format_usd(run.cost_nano) if run else "—",
                latency,
                run.status if run else "not run",
            ]
            lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    if comparison.repeats > 1:
        lines += _stats_lines(columns, grouped)
    for i, column in enumerate(columns, 1):
        lines += ["", f"## {i}. {md_inline(column_label(column))}", ""]
        if not comparison.shared_input:
            lines += _input_lines(column_input(comparison, column))
        for n, run in enumerate(grouped.get(column.pk, []), 1):
            if comparison.repeats > 1:
                lines += [f"Run {n}:", ""]
            text = run.output_text if run.status == Run.Status.SUCCESS else f"{run.status}: {run.error}"
            if run.tool_calls:
                text += ("\n" if text else "") + json.dumps(run.tool_calls, indent=2)
            fence = _fence(text)
            lines += [fence, text, fence, ""]
    return "\n".join(lines).rstrip() + "\n"


def _stats_lines(columns: list[ComparisonColumn], grouped: dict[int, list[Run]]) -> list[str]:
    lines = [
        "",
        "| # | Column | Distinct outputs | Latency min / avg / max | Cost per run | Per 1,000 runs | Failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, column in enumerate(columns, 1):
        stats = column_stats(grouped.get(column.pk, []))
        latency = (
            f"{stats.latency_min:.0f} / {stats.latency_avg:.0f} / {stats.latency_max:.0f} ms"
            if stats.latency_avg is not None
            else "—"
        )
        cells = [
            str(i),
            column_label(column),
            f"{stats.distinct_outputs} of {stats.runs}",
            latency,
            stats.cost_text(stats.cost_per_run_nano),
            stats.cost_text(stats.cost_per_1000_nano),
            str(stats.failures),
        ]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return lines


# Everything a user typed or Maxim returned is text, never Markdown or HTML: outside fences
# these characters are backslash-escaped (CommonMark allows it for any ASCII punctuation),
# so a name cannot become a link, an image that loads on opening, HTML, emphasis or a heading.
# (Line-start markers like "-", "+" or "1." need no escape: every such text follows a prefix.)
def _input_lines(inputs: dict[str, Any]) -> list[str]:
    """The input as a list of turns ("- user: ..."), then its variables, each on one line;
    a multi-line turn is fenced inside its item."""
    turns = inputs.get("turns") or []
    lines = ["Input:", ""] if turns else []  # no heading over nothing: variables alone say what was sent
    for turn in turns:
        role, content = md_inline(turn.get("role", "?")), str(turn.get("content", ""))
        if "\n" in content or "\r" in content:
            fence = _fence(content)
            lines += [f"- {role}:", "", *(f"  {line}" for line in [fence, *content.splitlines(), fence]), ""]
        else:
            lines.append(f"- {role}: {md_inline(content)}")
    # Sorted: PostgreSQL's jsonb does not keep the order the variables were typed in.
    variables = sorted((inputs.get("variables") or {}).items())
    if variables:
        lines += ["", "Variables: " + ", ".join(f"{md_inline(k)}={md_inline(v)}" for k, v in variables)]
    return lines + [""]


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside the text, so outputs cannot break out."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _variables_line(inputs: dict) -> str:
    # Sorted: PostgreSQL's jsonb does not keep the order the variables were typed in.
    return ", ".join(f"{k}={v}" for k, v in sorted((inputs.get("variables") or {}).items()))
