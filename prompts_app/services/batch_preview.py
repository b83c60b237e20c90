"""What a person sees before a batch comparison starts: the number of calls and an estimated
cost, the soft budget, and the `{{variables}}` some cases have no value for. Reads only (the
estimate is a GET); services/batches.py starts the batch once the person has seen this.

A confirmation ("Start anyway") is a signed token of what the confirm page showed: the figures,
the batch's settings and the person. The batch starts only if the figures computed again at the
post are the same, so a flag in a hand-made post, or a confirmation of yesterday's cheaper
estimate, starts nothing. And a batch this person started moments ago with the same settings (from
another tab, most likely) is found before a second one starts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import Q
from django.utils import timezone

from prompts_app.models import BatchComparison, PromptVersion, TestCase, TestSet, Workspace
from prompts_app.pricing import format_usd
from prompts_app.run_input import InputTooLarge
from prompts_app.selectors.batches import soft_budget
from prompts_app.services import runs
from prompts_app.testset_files import blank_value

# The most cells one batch may have: 10,000 cases x 5 columns. Its matrix, summary and exports
# stay within their targets there; a larger comparison is a filtered part of the test set.
MAX_CELLS = 50_000
ESTIMATE_SAMPLE = 20  # cases tokenised per column; the rest are extrapolated from them


@dataclass(frozen=True)
class ColumnChoice:
    version: PromptVersion
    draft_content: dict[str, Any] | None = None
    label: str = ""


@dataclass(frozen=True)
class Estimate:
    calls: int
    cost_nano: int | None  # input tokens only; None when a column's model has no known price
    unpriced_columns: int
    input_tokens: int
    priced_cost_nano: int = 0  # the priced columns' part, shown beside the unpriced ones, never as $0
    cases: int = 0
    columns: int = 0
    repeats: int = 1


@dataclass(frozen=True)
class MissingVariable:
    """A `{{variable}}` a column's messages use that some cases have no value for (sent as typed)."""

    label: str
    variable: str
    cases: int
    total: int


@dataclass(frozen=True)
class Preview:
    """What a person sees before starting: calls and cost, the budget, the variables cases lack."""

    estimate: Estimate
    budget_nano: int | None
    missing: list[MissingVariable]

    @property
    def over_budget(self) -> bool:
        cost = self.estimate.cost_nano
        return self.budget_nano is not None and (cost is None or cost > self.budget_nano)

    @property
    def too_many(self) -> bool:
        return self.estimate.calls > MAX_CELLS

    @property
    def max_cells(self) -> int:
        return MAX_CELLS

    def reasons(self) -> str:
        said = ["it may cost more than the soft budget"] if self.over_budget else []
        said += [
            f"{m.label} uses {{{{{m.variable}}}}}, missing or empty in {m.cases} of {m.total}" for m in self.missing
        ]
        return "; ".join(said) + "."


def column_label(choice: ColumnChoice) -> str:
    return (choice.label or str(choice.version))[:300]


def cases_for(test_set: TestSet, case_filter: str = ""):
    cases = test_set.cases.all()
    if case_filter:
        cases = cases.filter(Q(variables__icontains=case_filter) | Q(expected_output__icontains=case_filter))
    return cases


def case_inputs(case: TestCase) -> dict[str, Any]:
    return {"turns": case.turns or [], "variables": case.variables or {}}


def estimate(*, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = "", repeats: int = 1) -> Estimate:
    """Number of calls and the input cost, from a sample of cases per column (output tokens are
    not known before the run, so the real cost is higher; the page says so)."""
    cases = cases_for(test_set, case_filter).order_by("position", "id")
    count = cases.count()  # not the cases themselves: 10,000 of them took a second to load
    sample = list(cases[:ESTIMATE_SAMPLE])
    total_cost, total_tokens, unpriced = 0, 0, 0
    for choice in columns:
        version = _as_version(choice)
        rules = runs.custom_price_rules(version.prompt.workspace)  # once, not per sampled case (a query each)
        tokens, cost, priced = 0, 0, True
        for case in sample:
            try:
                case_tokens, price = runs.estimate(version=version, inputs=case_inputs(case), custom_rules=rules)
            except InputTooLarge:
                continue
            tokens += case_tokens
            if price.cost_nano is None:
                priced = False
            else:
                cost += price.cost_nano
        scale = count / len(sample) if sample else 0
        total_tokens += round(tokens * scale) * repeats
        if priced:
            total_cost += round(cost * scale) * repeats
        else:
            unpriced += 1
    calls = count * len(columns) * repeats
    cost = None if unpriced else total_cost
    return Estimate(calls, cost, unpriced, total_tokens, total_cost, count, len(columns), repeats)


def missing_variables(
    *, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = ""
) -> list[MissingVariable]:
    """Per column, each `{{variable}}` of its messages that some cases have no value, or an empty one, for."""
    used = [(column_label(choice), _as_version(choice).variables()) for choice in columns]
    names = {name for _, found in used for name in found}
    lacking: Counter[str] = Counter()
    total = 0
    if names:
        for variables in cases_for(test_set, case_filter).values_list("variables", flat=True).iterator(2000):
            total += 1
            # Empty counts as missing (new-user trial: a set imported "anyway" with empty values
            # started without a word, although the import had warned about them).
            lacking.update(name for name in names if blank_value((variables or {}).get(name)))
    return [
        MissingVariable(label, name, lacking[name], total) for label, found in used for name in found if lacking[name]
    ]


def preview(
    *, workspace: Workspace, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = "", repeats: int = 1
) -> Preview:
    return Preview(
        estimate(columns=columns, test_set=test_set, case_filter=case_filter, repeats=repeats),
        soft_budget(workspace),  # a read: the estimate is a GET
        missing_variables(columns=columns, test_set=test_set, case_filter=case_filter),
    )


# A batch like the one being started, by the same person, counts as "already started" while it is
# preparing or running, or this long after it started (a finished one may be what they want again).
TWIN_WINDOW = dt.timedelta(minutes=10)


def started_twin(
    user, test_set: TestSet, columns: list[ColumnChoice], case_filter: str, repeats: int, checks: list
) -> BatchComparison | None:
    """The newest batch of this person with these cases, columns (in order), repeats and checks
    that is preparing or running, or started within TWIN_WINDOW."""
    statuses = [BatchComparison.Status.PREPARING, BatchComparison.Status.RUNNING]
    recent = Q(status__in=statuses) | Q(created_at__gte=timezone.now() - TWIN_WINDOW)
    candidates = BatchComparison.objects.filter(recent, created_by=user, test_set=test_set)
    candidates = candidates.filter(case_filter=case_filter, repeats=repeats).prefetch_related("columns")
    wanted = [(c.version.pk, c.draft_content) for c in columns]
    for batch in candidates.order_by("-created_at", "-id")[:20]:
        shape = [(c.version_id, c.draft_content) for c in sorted(batch.columns.all(), key=lambda c: c.position)]
        if shape == wanted and batch.checks == checks:
            return batch
    return None


CONFIRM_SALT = "prompts_app.batch-confirmation"
CONFIRM_MAX_AGE = 30 * 60  # seconds: an older confirm page is shown again with today's figures


def settings_key(
    test_set: TestSet, columns: list[ColumnChoice], case_filter: str, repeats: int, checks: list, concurrency: int
) -> str:
    """A digest of the batch's settings: a confirmation holds for these and no others (a draft's
    content is part of it: a draft edited since would cost something else)."""
    said = {
        "test_set": test_set.pk,
        "columns": [[c.version.pk, c.draft_content] for c in columns],
        "case_filter": case_filter,
        "repeats": repeats,
        "checks": checks,
        "concurrency": concurrency,
    }
    return hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _seen(preview: Preview, settings: str, user_id: int) -> dict[str, Any]:
    e = preview.estimate
    missing = [[m.label, m.variable, m.cases, m.total] for m in preview.missing]
    return {
        "calls": e.calls,
        "cost": e.cost_nano,
        "priced": e.priced_cost_nano,
        "unpriced": e.unpriced_columns,
        "budget": preview.budget_nano,
        "missing": hashlib.sha256(json.dumps(missing).encode()).hexdigest()[:16],
        "settings": settings,
        "user": user_id,
    }


def confirmation_token(preview: Preview, *, settings: str, user_id: int) -> str:
    """What the confirm page's "Start anyway" sends back: `preview` as this person saw it, signed."""
    return signing.dumps(_seen(preview, settings, user_id), salt=CONFIRM_SALT, compress=True)


def confirmation_problem(token: str, preview: Preview, *, settings: str, user_id: int) -> str | None:
    """None when `token` confirms exactly `preview`; otherwise what the person reads above the figures
    computed now ("" when nothing was confirmed: the confirm page says enough)."""
    if not token:
        return ""
    try:
        said = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.SignatureExpired:
        return "Your confirmation is more than 30 minutes old. Check the figures below and confirm again."
    except signing.BadSignature:
        return "That confirmation is not valid. Check the figures below and confirm again."
    now = _seen(preview, settings, user_id)
    if said == now:
        return None
    if not isinstance(said, dict) or (said.get("settings"), said.get("user")) != (settings, user_id):
        return "That confirmation was for other settings. Check the figures below and confirm again."
    changes = []
    if said.get("calls") != now["calls"]:
        changes.append(f"{said.get('calls'):,} calls, now {now['calls']:,}")
    if (said.get("cost"), said.get("priced"), said.get("unpriced")) != (now["cost"], now["priced"], now["unpriced"]):
        changes.append(f"estimated cost {_cost(said)}, now {_cost(now)}")
    if said.get("budget") != now["budget"]:
        changes.append(f"soft budget {_money(said.get('budget'))}, now {_money(now['budget'])}")
    if said.get("missing") != now["missing"]:
        changes.append("the variables some cases lack")
    return f"The estimate changed since you confirmed: {'; '.join(changes)}. Confirm again."


def _cost(seen: dict[str, Any]) -> str:
    if seen.get("cost") is not None or not seen.get("unpriced"):
        return format_usd(seen.get("cost"))
    return f"{format_usd(seen.get('priced'))} + {seen['unpriced']} unpriced column{'s' if seen['unpriced'] > 1 else ''}"


def _money(nano: int | None) -> str:
    return "none" if nano is None else format_usd(nano)


def _as_version(choice: ColumnChoice) -> PromptVersion:
    """A draft snapshot estimated as if it were its base version's content (never saved)."""
    if choice.draft_content is None:
        return choice.version
    base = choice.version
    fields = {
        key: choice.draft_content.get(key, getattr(base, key))
        for key in ("provider", "model_name", "model_parameters", "messages", "tools")
    }
    return PromptVersion(prompt=base.prompt, maxim_id=base.maxim_id, number=base.number, **fields)
