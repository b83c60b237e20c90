"""The "new batch comparison" form: 1-8 versions or drafts of one workspace, a test set,
repeats, a concurrency limit and the checks (the common ones as fields, any other as JSON)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django import forms

from prompts_app.checks import MAX_JSON_DEPTH, CheckConfigError, build_check, build_checks, parse_checks
from prompts_app.jsontext import load_json
from prompts_app.models import Draft, PromptVersion, TestSet, Workspace
from prompts_app.services.batches import MAX_COLUMNS, MAX_CONCURRENCY, MAX_REPEATS, ColumnChoice

NANO_PER_USD = 10**9
TOKEN = re.compile(r"[0-9a-f]{32}")  # what __init__ issues: uuid4().hex
ESTIMATED = ("columns", "test_set", "case_filter", "repeats")  # the fields the estimate counts with


def column_choices(workspace: Workspace, user) -> list[tuple[str, str]]:
    versions = PromptVersion.objects.filter(prompt__workspace=workspace).select_related("prompt")
    drafts = Draft.objects.filter(prompt__workspace=workspace, user=user, created_version=None).select_related(
        "prompt", "base_version"
    )
    choices = [(f"v{v.pk}", f"{v} · {v.model_name}") for v in versions.order_by("prompt__name", "-number")]
    choices += [(f"d{d.pk}", f"Draft of {d.prompt.name} · {d.model_name}") for d in drafts]
    return choices


class ColumnSlots(forms.Widget):
    """One select per column, "Column 1 (baseline)" to "Column 8", all named like the field: the
    columns are posted (and run, shown and exported) in the order the person put them, which a
    list of checkboxes cannot say. An empty slot posts "" and is skipped."""

    template_name = "prompts_app/batches/new_columns.html"

    def __init__(self, attrs: dict | None = None, choices=()) -> None:
        super().__init__(attrs)
        self.choices = list(choices)

    def value_from_datadict(self, data, files, name: str) -> list[str]:
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name) or []
        return [value for value in values if value]

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return False  # an empty list is a value: no column chosen

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0" if id_ else id_

    def get_context(self, name: str, value, attrs) -> dict:
        context = super().get_context(name, value, attrs)
        picked = list(value or [])
        base = context["widget"]["attrs"].get("id", f"id_{name}")
        context["widget"]["slots"] = [
            {
                "id": f"{base}_{n}",
                "label": "Column 1 (baseline)" if n == 0 else f"Column {n + 1}",
                "value": picked[n] if n < len(picked) else "",
            }
            for n in range(MAX_COLUMNS)
        ]
        context["widget"]["choices"] = self.choices
        return context


class BatchForm(forms.Form):
    title = forms.CharField(max_length=300, required=False, help_text="Optional, up to 300 characters.")
    columns = forms.MultipleChoiceField(
        widget=ColumnSlots,
        label="Versions and drafts",
        help_text=f"1 to {MAX_COLUMNS}, in the order they should appear; column 1 is the baseline.",
        error_messages={"required": f"Choose 1 to {MAX_COLUMNS} versions or drafts."},
    )
    test_set = forms.ModelChoiceField(queryset=TestSet.objects.none(), empty_label=None)
    case_filter = forms.CharField(
        label="Only cases containing",
        max_length=200,
        required=False,
        help_text="Leave empty for every case.",
    )
    repeats = forms.IntegerField(min_value=1, max_value=MAX_REPEATS, initial=1)
    concurrency = forms.IntegerField(
        label="Calls at once",
        min_value=1,
        max_value=MAX_CONCURRENCY,
        initial=4,
        help_text=f"1 to {MAX_CONCURRENCY}; lowered automatically while Maxim answers 429.",
    )
    check_contains = forms.CharField(label="Output contains", max_length=1000, required=False)
    check_not_contains = forms.CharField(label="Output does not contain", max_length=1000, required=False)
    check_regex = forms.CharField(label="Output matches the regular expression", max_length=501, required=False)
    check_equals_expected = forms.BooleanField(label="Output equals the expected output", required=False)
    check_valid_json = forms.BooleanField(label="Output is valid JSON", required=False)
    check_max_chars = forms.IntegerField(label="At most this many characters", min_value=0, required=False)
    check_max_usd = forms.DecimalField(label="Cost at most (USD)", min_value=0, decimal_places=9, required=False)
    check_json = forms.CharField(
        label="More checks (JSON list)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='E.g. [{"type": "tool_call", "tool": "lookup"}, {"type": "latency", "max_ms": 2000}]',
    )
    # Sent only by the "Start anyway" button of the confirmation step: the signed token of the
    # figures that step showed (services/batch_preview.py), never a flag a post can just carry.
    confirmation = forms.CharField(widget=forms.HiddenInput, required=False)
    # Sent only by "Start another anyway", when the same batch was started a moment ago (another tab).
    again = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Posting the same form twice (double click, back + resubmit) opens the batch the first post started.
    submit_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, workspace: Workspace, user, **kwargs) -> None:
        kwargs.setdefault("initial", {}).setdefault("submit_token", uuid.uuid4().hex)
        if args and args[0] is not None and not TOKEN.fullmatch(args[0].get("submit_token", "")):
            # A post without this page's token (a script, a form kept from an old page, a forged
            # value) gets a fresh one: it is then a new form's post, so the twin check applies
            # (services.batches.start_batch skips it only for token-less code) and, on the
            # "already started" step, the hidden field carries a token a resubmit can match.
            data = args[0].copy()
            data["submit_token"] = uuid.uuid4().hex
            args = (data, *args[1:])
        super().__init__(*args, **kwargs)
        self.workspace, self.user = workspace, user
        self.fields["columns"].choices = column_choices(workspace, user)
        self.fields["test_set"].queryset = TestSet.objects.filter(workspace=workspace)

    def estimate_inputs(self) -> dict[str, Any] | None:
        """What the estimate counts (columns, test set, case filter, repeats) once those fields are
        valid, whatever the others say: a bad regex or title must not hide the estimate of the
        versions chosen (new-user trial: after such a submit it read "Choose versions…")."""
        if not self.is_bound or any(name in self.errors for name in ESTIMATED):
            return None
        return {name: self.cleaned_data[name] for name in ESTIMATED}

    def clean_confirmation(self) -> str:
        # Cut, not refused: a hidden field's error would show nowhere; a cut token is "not valid" on the page.
        return self.cleaned_data["confirmation"][:2000]

    def clean_columns(self) -> list[ColumnChoice]:
        keys = self.cleaned_data["columns"]
        if not 1 <= len(keys) <= MAX_COLUMNS:
            raise forms.ValidationError(f"Choose 1 to {MAX_COLUMNS} versions or drafts.")
        if len(set(keys)) != len(keys):
            raise forms.ValidationError("Choose each version or draft once; use repeats to run one several times.")
        return [self._choice(key) for key in keys]

    def _choice(self, key: str) -> ColumnChoice:
        kind, pk = key[0], int(key[1:])
        if kind == "v":
            return ColumnChoice(PromptVersion.objects.select_related("prompt__workspace").get(pk=pk))
        draft = Draft.objects.select_related("prompt", "base_version").get(pk=pk)
        base = draft.base_version or draft.prompt.versions.order_by("-number", "-created_at").first()
        if base is None:
            raise forms.ValidationError("A draft of a prompt without versions cannot run yet.")
        return ColumnChoice(base, draft_content=draft.content(), label=f"Draft of {draft.prompt.name}")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        fields = self._checks(data)
        # A check typed in its own field is judged there: its error beside it (role="alert",
        # aria-describedby), not at the top of the form (new-user trial: a bad regex); and whatever
        # "More checks" holds (new-user trial: its bad JSON hid the regex's error until the next submit).
        for name, spec in fields:
            try:
                build_check(spec)
            except CheckConfigError as exc:
                self.add_error(name, " ".join(f"{error[:1].upper()}{error[1:]}." for error in exc.errors))
        try:
            fields += self._json_checks(data)
        except CheckConfigError as exc:  # the JSON of "More checks" cannot be read
            self.add_error("check_json", " ".join(exc.errors))
            return data
        data["checks"] = [spec for _, spec in fields]
        if not self.errors:
            try:
                build_checks(data["checks"])  # the JSON's checks, and the limits on all of them
            except CheckConfigError as exc:
                self.add_error("check_json" if data.get("check_json") else None, " ".join(exc.errors))
        return data

    def _checks(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Each check typed in a field of its own, with that field."""
        specs: list[tuple[str, dict[str, Any]]] = []
        if data.get("check_contains"):
            specs.append(("check_contains", {"type": "contains", "value": data["check_contains"]}))
        if data.get("check_not_contains"):
            specs.append(("check_not_contains", {"type": "not_contains", "value": data["check_not_contains"]}))
        if data.get("check_regex"):
            specs.append(("check_regex", {"type": "regex", "pattern": data["check_regex"]}))
        if data.get("check_equals_expected"):
            specs.append(("check_equals_expected", {"type": "equals_expected"}))
        if data.get("check_valid_json"):
            specs.append(("check_valid_json", {"type": "valid_json"}))
        if data.get("check_max_chars") is not None:
            specs.append(("check_max_chars", {"type": "length", "max": data["check_max_chars"]}))
        if data.get("check_max_usd") is not None:
            specs.append(("check_max_usd", {"type": "cost", "max_usd": str(data["check_max_usd"])}))
        return specs

    def _json_checks(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The checks of "More checks"; raises CheckConfigError with where its JSON is wrong."""
        if not data.get("check_json"):
            return []
        parse_checks(data["check_json"])
        return [("check_json", spec) for spec in load_json(data["check_json"], max_depth=MAX_JSON_DEPTH)]


class BudgetForm(forms.Form):
    soft_budget_usd = forms.DecimalField(
        label="Soft budget per batch (USD)",
        min_value=0,
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text="A batch estimated above this asks to confirm before it starts. Empty: never asks.",
        # Text, not type=number: a browser sends "" for "abc" in a number field, which saved "never asks"
        # with a "saved" banner (new-user trial); the server now sees what was typed and says what is wrong.
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    def budget_nano(self) -> int | None:
        value = self.cleaned_data["soft_budget_usd"]
        return None if value is None else int(Decimal(value) * NANO_PER_USD)
