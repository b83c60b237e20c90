"""The "new comparison" form: 2 to 8 columns (versions or the user's drafts) of one
workspace, and the input they get (one shared input, or one per column)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.forms import BaseFormSet
from django.http import QueryDict

from prompts_app.forms.turns import TURN_PREFIX, cleaned_turns, posted_turns, rearranged_turns, turn_formset
from prompts_app.models import Draft, Prompt, PromptVersion, Workspace
from prompts_app.run_input import input_problem
from prompts_app.services.compare import MAX_COLUMNS, MAX_REPEATS, MIN_COLUMNS, ColumnSpec, draft_base_version


@dataclass
class Choice:
    key: str  # "v<id>" for a version, "d<id>" for a draft
    label: str
    detail: str
    checked: bool
    is_draft: bool


@dataclass
class ColumnInputs:
    """The input fields of one column (or of the shared input, with key "")."""

    key: str
    label: str
    turns: BaseFormSet
    variables: list[forms.BoundField]

    @property
    def prefix(self) -> str:
        return self.turns.prefix


EMPTY_INPUT = "Type the message to send; an empty input cannot be compared."


def turn_prefix(key: str) -> str:
    """The turn formset's prefix: "turn" for the shared input, "turn__<column key>" per column."""
    return f"{TURN_PREFIX}__{key}" if key else TURN_PREFIX


class CompareForm(forms.Form):
    title = forms.CharField(max_length=300, required=False, help_text="Optional; helps find it in the list later.")
    columns = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": f"Pick at least {MIN_COLUMNS} columns to compare.",
            "invalid_choice": "%(value)s is not a version of this workspace.",
        },
    )
    shared_input = forms.BooleanField(required=False, initial=True, label="Same input for every column")
    submit_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    repeats = forms.IntegerField(
        min_value=1, max_value=MAX_REPEATS, initial=1, label="Runs per column",
        help_text=f"1 to {MAX_REPEATS}; more runs show how stable the output is.",
    )

    def __init__(
        self,
        data: QueryDict | None = None,
        *,
        workspace: Workspace,
        user: AbstractBaseUser,
        refresh: bool = False,
        action: str = "",
        **kwargs: Any,
    ):
        source = data
        if refresh and data is not None:
            # Re-drawing the inputs while columns are picked: keep what was typed, but as
            # initial values, so nothing is reported missing before the user submits.
            kwargs["initial"] = {k: data.getlist(k) if k == "columns" else data.get(k) for k in data}
            data = None
        kwargs.setdefault("initial", {}).setdefault("submit_token", uuid.uuid4().hex)
        super().__init__(data, **kwargs)
        self.workspace = workspace
        versions = (
            PromptVersion.objects.filter(prompt__workspace=workspace)
            .select_related("prompt")
            .order_by("prompt__name", "number", "created_at")  # columns read left to right, oldest first
        )
        drafts = Draft.objects.filter(user=user, prompt__workspace=workspace, created_version__isnull=True)
        self.options: dict[str, PromptVersion | Draft] = {f"v{v.pk}": v for v in versions}
        self.options.update({f"d{d.pk}": d for d in drafts.select_related("prompt", "base_version")})
        self.fields["columns"].choices = [(key, key) for key in self.options]
        self.selected = [k for k in (source.getlist("columns") if source is not None else []) if k in self.options]
        self.shared = source is None or bool(source.get("shared_input"))
        self._add_input_fields()
        self.turn_sets = self._turn_sets(source, action)

    # -- dynamic input fields ------------------------------------------------------------

    def _variables_of(self, keys: list[str]) -> list[str]:
        found: dict[str, None] = {}
        for key in keys:
            for name in self.options[key].variables():
                found.setdefault(name, None)
        return list(found)

    def _add_input_fields(self) -> None:
        if self.shared:
            for name in self._variables_of(self.selected):
                self.fields[f"var__{name}"] = _variable_field(name)
            return
        for key in self.selected:
            for name in self._variables_of([key]):
                self.fields[f"var__{key}__{name}"] = _variable_field(name)

    def _turn_sets(self, source: QueryDict | None, action: str) -> dict[str, BaseFormSet]:
        """A turn formset per input: bound when submitting, else showing what was posted,
        with a turn added or removed when `action` ("<prefix>:add-turn", ...) says so."""
        keys = [""] if self.shared else self.selected
        if self.is_bound:
            return {key: turn_formset(self.data, prefix=turn_prefix(key)) for key in keys}
        target, _, turn_action = action.partition(":")
        shared_turns = posted_turns(source, TURN_PREFIX) if source is not None else []
        sets = {}
        for key in keys:
            prefix = turn_prefix(key)
            # A column's input starts as the shared one, so unticking "same input" keeps it.
            turns = (posted_turns(source, prefix) if source is not None else []) or shared_turns
            if prefix == target:
                turns = rearranged_turns(turns, turn_action)
            sets[key] = turn_formset(prefix=prefix, turns=[dict(t) for t in turns])
        return sets

    def input_groups(self) -> list[ColumnInputs]:
        if self.shared:
            names = self._variables_of(self.selected)
            return [ColumnInputs("", "Every column", self.turn_sets[""], [self[f"var__{n}"] for n in names])]
        return [
            ColumnInputs(
                key,
                self.label_of(key),
                self.turn_sets[key],
                [self[f"var__{key}__{n}"] for n in self._variables_of([key])],
            )
            for key in self.selected
        ]

    # -- what the template lists -----------------------------------------------------------

    def label_of(self, key: str) -> str:
        option = self.options[key]
        if isinstance(option, Draft):
            return f"Draft of {option.prompt.name}"
        return str(option)

    def prompt_groups(self) -> list[tuple[Prompt, list[Choice]]]:
        groups: dict[int, tuple[Prompt, list[Choice]]] = {}
        for key, option in self.options.items():
            prompt = option.prompt
            is_draft = isinstance(option, Draft)
            label = "Your draft" if is_draft else f"v{option.number}" if option.number else option.maxim_id
            detail = f"{option.model_name or 'no model'} · {option.provider}"
            if option.description:
                detail += f" — {option.description[:80]}"
            choice = Choice(key, label, detail, key in self.selected, is_draft)
            groups.setdefault(prompt.pk, (prompt, []))[1].append(choice)
        return sorted(groups.values(), key=lambda group: group[0].name.lower())

    # -- validation ---------------------------------------------------------------------------

    def clean_columns(self) -> list[str]:
        keys = list(dict.fromkeys(self.cleaned_data["columns"]))  # a column once, in the order given
        if len(keys) < MIN_COLUMNS:
            raise forms.ValidationError(f"Pick at least {MIN_COLUMNS} columns to compare (you picked {len(keys)}).")
        if len(keys) > MAX_COLUMNS:
            raise forms.ValidationError(f"Pick at most {MAX_COLUMNS} columns (you picked {len(keys)}).")
        for key in keys:
            option = self.options[key]
            if isinstance(option, Draft) and draft_base_version(option) is None:
                raise forms.ValidationError(
                    f"Your draft of {option.prompt.name} has no saved version to run against yet."
                )
        return keys

    def is_valid(self) -> bool:
        # clean() may add "type a message" to a turn, so the turns are judged after it.
        form_ok = super().is_valid()
        return all([turns.is_valid() for turns in self.turn_sets.values()]) and form_ok

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for turns in self.turn_sets.values():
            if turns.is_valid() and not cleaned_turns(turns):
                if turns.forms:
                    turns.forms[0].add_error("content", EMPTY_INPUT)
                else:  # a hand-made post without turns
                    self.add_error(None, EMPTY_INPUT)
        keys = cleaned.get("columns") or []
        cleaned["input"] = self._input("") if self.shared else {}
        specs = []
        for key in keys:
            option = self.options[key]
            draft = option if isinstance(option, Draft) else None
            version = draft_base_version(draft) if draft else option
            specs.append(ColumnSpec(version=version, draft=draft, input=None if self.shared else self._input(key)))
        cleaned["column_specs"] = specs
        self._check_sizes(keys, specs, cleaned["input"])
        return cleaned

    def _check_sizes(self, keys: list[str], specs: list[ColumnSpec], shared: dict[str, Any]) -> None:
        """Each column's input, filled into its messages, within the run limits (run_input)."""
        for key, spec in zip(keys, specs):
            messages = (spec.draft or spec.version).messages
            problem = input_problem(messages, spec.input if spec.input is not None else shared)
            if problem:
                self.add_error(None, f"{self.label_of(key)}: {problem}")
                return

    def _input(self, key: str) -> dict[str, Any]:
        turns = self.turn_sets.get(key)
        prefix = "var__" if not key else f"var__{key}__"
        variables = {
            name.removeprefix(prefix): value
            for name, value in self.cleaned_data.items()
            if name.startswith(prefix) and (key or name.count("__") == 1)
        }
        # Empty turns are dropped, as on a version's run form.
        return {"turns": cleaned_turns(turns) if turns is not None and turns.is_valid() else [], "variables": variables}


def _variable_field(name: str) -> forms.CharField:
    return forms.CharField(
        label=f"{{{{{name}}}}}",
        error_messages={"required": f"Fill in {{{{{name}}}}}: a version uses it."},
    )


class RunAgainForm(forms.Form):
    repeats = forms.IntegerField(min_value=1, max_value=MAX_REPEATS, initial=1, label="Runs per column")
    batch = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
