"""The "new comparison" form: 2 to 8 columns (versions or the user's drafts) of one
workspace, in the order chosen (the same version may appear twice, to see its variance),
and the input they get (one shared input, or one per column).

Columns are rows the user adds, moves and removes ("column:add", "column:up-<i>", ...);
each row carries a stable id (`column_uid`) so its own input follows it when it moves.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.forms import BaseFormSet
from django.http import QueryDict

from prompts_app.forms.turns import TURN_PREFIX, cleaned_turns, posted_turns, rearranged_turns, turn_formset
from prompts_app.models import Draft, Prompt, PromptVersion, Workspace
from prompts_app.run_input import has_content, input_problem
from prompts_app.services.compare import MAX_COLUMNS, MAX_REPEATS, MIN_COLUMNS, ColumnSpec, draft_base_version


@dataclass
class Choice:
    key: str  # "v<id>" for a version, "d<id>" for a draft
    label: str
    detail: str
    checked: bool
    is_draft: bool


@dataclass
class ColumnRow:
    """One chosen column, as the form lists it."""

    uid: str  # stable while the row moves; names its per-column input fields
    key: str  # the option: "v<id>" or "d<id>"
    label: str
    detail: str
    variables: list[str]
    is_draft: bool


@dataclass
class VariableInput:
    name: str
    field: forms.BoundField
    used: bool  # by a chosen column; the others stay in the page, hidden, keeping what was typed


@dataclass
class ColumnInputs:
    """The input fields of one column (key: its row's uid) or of the shared input (key "")."""

    key: str
    label: str
    turns: BaseFormSet
    variables: list[VariableInput]
    number: int = 0  # the column's 1-based position; 0 for the shared input

    @property
    def prefix(self) -> str:
        return self.turns.prefix


COLUMN_ACTION = "column"  # "column:add", "column:up-<i>", "column:down-<i>", "column:remove-<i>"
_UID = re.compile(r"^[vd][0-9]{1,12}(?:_[0-9]{1,2})?$")
_ROW_ACTION = re.compile(r"^(up|down|remove)-([0-9]{1,3})$")
MAX_ROWS = MAX_COLUMNS + 8  # rows beyond this are dropped when redrawing (and refused on submit)


EMPTY_INPUT = "Type the message to send: this version's own messages are empty, so there is nothing to compare."


def turn_prefix(key: str) -> str:
    """The turn formset's prefix: "turn" for the shared input, "turn__<column key>" per column."""
    return f"{TURN_PREFIX}__{key}" if key else TURN_PREFIX


class CompareForm(forms.Form):
    title = forms.CharField(max_length=300, required=False, help_text="Optional; helps find it in the list later.")
    columns = forms.MultipleChoiceField(
        widget=forms.MultipleHiddenInput,
        error_messages={
            "required": f"Pick at least {MIN_COLUMNS} columns to compare.",
            "invalid_choice": "%(value)s is not a version of this workspace.",
        },
    )
    shared_input = forms.BooleanField(required=False, initial=True, label="Same input for every column")
    submit_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    repeats = forms.IntegerField(
        min_value=1,
        max_value=MAX_REPEATS,
        initial=1,
        label="Runs per column",
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
        self.column_message = ""
        self.added_uid = ""
        self.add_value = source.get("add_column", "") if source is not None else ""
        self.rows = self._rows(source, action if not self.is_bound else "")
        self.selected = [key for _, key in self.rows]
        self.shared = source is None or bool(source.get("shared_input"))
        self._add_input_fields()
        self.turn_sets = self._turn_sets(source, action)

    # -- the chosen columns ------------------------------------------------------------------

    def _rows(self, source: QueryDict | None, action: str) -> list[tuple[str, str]]:
        """(uid, key) per chosen column, in order, with `action` applied when it is a column action."""
        if source is None:
            return []
        uids = source.getlist("column_uid")
        rows: list[tuple[str, str]] = []
        for i, key in enumerate(source.getlist("columns")[:MAX_ROWS]):
            if key not in self.options:
                continue
            uid = uids[i] if i < len(uids) else ""
            taken = {u for u, _ in rows}
            rows.append((uid if _UID.match(uid) and uid not in taken else _new_uid(key, taken), key))
        target, _, column_action = action.partition(":")
        if target == COLUMN_ACTION:
            rows = self._rearranged(rows, column_action)
        return rows

    def _rearranged(self, rows: list[tuple[str, str]], action: str) -> list[tuple[str, str]]:
        rows = list(rows)
        if action == "add":
            if self.add_value not in self.options:
                self.column_message = "Choose a version or draft to add."
            elif len(rows) >= MAX_COLUMNS:
                self.column_message = f"A comparison has at most {MAX_COLUMNS} columns; remove one first."
            else:
                self.added_uid = _new_uid(self.add_value, {u for u, _ in rows})
                rows.append((self.added_uid, self.add_value))
            return rows
        match = _ROW_ACTION.match(action)
        if not match or int(match[2]) >= len(rows):
            return rows
        move, i = match[1], int(match[2])
        if move == "remove":
            del rows[i]
        elif move == "up" and i > 0:
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif move == "down" and i + 1 < len(rows):
            rows[i + 1], rows[i] = rows[i], rows[i + 1]
        return rows

    def column_rows(self) -> list[ColumnRow]:
        rows = []
        for uid, key in self.rows:
            option = self.options[key]
            rows.append(
                ColumnRow(uid, key, self.label_of(key), _detail(option), option.variables(), isinstance(option, Draft))
            )
        return rows

    def _key_of(self, uid: str) -> str:
        return next(key for u, key in self.rows if u == uid)

    # -- dynamic input fields ------------------------------------------------------------

    def _variables_of(self, keys: list[str]) -> list[str]:
        found: dict[str, None] = {}
        for key in keys:
            for name in self.options[key].variables():
                found.setdefault(name, None)
        return list(found)

    def _add_input_fields(self) -> None:
        if self.shared:
            # Every variable any option uses, so choosing columns only shows or hides fields
            # (static/js/compare.js) and never redraws one the user is typing in.
            used = set(self._variables_of(self.selected))
            for name in self._variables_of(list(self.options)):
                self.fields[f"var__{name}"] = _variable_field(name, required=name in used)
            return
        for uid, key in self.rows:
            for name in self._variables_of([key]):
                self.fields[f"var__{uid}__{name}"] = _variable_field(name)

    def _turn_sets(self, source: QueryDict | None, action: str) -> dict[str, BaseFormSet]:
        """A turn formset per input: bound when submitting, else showing what was posted,
        with a turn added or removed when `action` ("<prefix>:add-turn", ...) says so."""
        keys = [""] if self.shared else [uid for uid, _ in self.rows]
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
            used = set(self._variables_of(self.selected))
            variables = [VariableInput(n, self[f"var__{n}"], n in used) for n in self._variables_of(list(self.options))]
            return [ColumnInputs("", "Every column", self.turn_sets[""], variables)]
        return [
            ColumnInputs(
                uid,
                self.label_of(key),
                self.turn_sets[uid],
                [VariableInput(n, self[f"var__{uid}__{n}"], True) for n in self._variables_of([key])],
                number=number,
            )
            for number, (uid, key) in enumerate(self.rows, 1)
        ]

    def added_group(self) -> ColumnInputs | None:
        """The input of the column just added, when each column has its own (sent out of band)."""
        if self.shared or not self.added_uid:
            return None
        return next(g for g in self.input_groups() if g.key == self.added_uid)

    # -- what the template lists -----------------------------------------------------------

    def label_of(self, key: str) -> str:
        option = self.options[key]
        if isinstance(option, Draft):
            return f"Draft of {option.prompt.name} ({option.origin})"
        return str(option)

    def prompt_groups(self) -> list[tuple[Prompt, list[Choice]]]:
        """The "Add column" choices, grouped by prompt."""
        groups: dict[int, tuple[Prompt, list[Choice]]] = {}
        for key, option in self.options.items():
            prompt = option.prompt
            is_draft = isinstance(option, Draft)
            label = (
                f"Your draft ({option.origin})"
                if is_draft
                else f"v{option.number}"
                if option.number
                else option.maxim_id
            )
            choice = Choice(key, label, _detail(option), key == self.add_value, is_draft)
            groups.setdefault(prompt.pk, (prompt, []))[1].append(choice)
        return sorted(groups.values(), key=lambda group: group[0].name.lower())

    # -- validation ---------------------------------------------------------------------------

    def clean_columns(self) -> list[str]:
        keys = self.cleaned_data["columns"]  # in the order given; the same one twice shows its variance
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
        cleaned["input"] = self._input("") if self.shared else {}
        cleaned["column_specs"] = self._column_specs() if cleaned.get("columns") else []
        self._check_something_to_send(cleaned["column_specs"], cleaned["input"])
        self._check_sizes(cleaned["column_specs"], cleaned["input"])
        return cleaned

    def _check_something_to_send(self, specs: list[ColumnSpec], shared: dict[str, Any]) -> None:
        """Turns are optional, as on a version's run form: a column whose own messages hold the
        text runs from its variables alone. A column with nothing to send gets the error on its turns."""
        for (uid, _key), spec in zip(self.rows, specs):
            turns = self.turn_sets.get("" if self.shared else uid)
            if turns is not None and not turns.is_valid():
                continue  # the turn already carries its own error
            column_input = spec.input if spec.input is not None else shared
            if any(has_content(m) for m in [*(spec.draft or spec.version).messages, *column_input["turns"]]):
                continue
            if turns is not None and turns.forms:
                turns.forms[0].add_error("content", EMPTY_INPUT)
            else:  # a hand-made post without turns
                self.add_error(None, EMPTY_INPUT)
            if self.shared:
                return

    def _check_sizes(self, specs: list[ColumnSpec], shared: dict[str, Any]) -> None:
        """Each column's input, filled into its messages, within the run limits (run_input)."""
        for (_uid, key), spec in zip(self.rows, specs):
            messages = (spec.draft or spec.version).messages
            problem = input_problem(messages, spec.input if spec.input is not None else shared)
            if problem:
                self.add_error(None, f"{self.label_of(key)}: {problem}")
                return

    def _column_specs(self) -> list[ColumnSpec]:
        specs = []
        for uid, key in self.rows:
            option = self.options[key]
            draft = option if isinstance(option, Draft) else None
            version = draft_base_version(draft) if draft else option
            specs.append(ColumnSpec(version=version, draft=draft, input=None if self.shared else self._input(uid)))
        return specs

    def _input(self, uid: str) -> dict[str, Any]:
        turns = self.turn_sets.get(uid)
        names = self._variables_of([self._key_of(uid)] if uid else self.selected)
        prefix = f"var__{uid}__" if uid else "var__"
        variables = {name: self.cleaned_data[prefix + name] for name in names if prefix + name in self.cleaned_data}
        # Empty turns are dropped, as on a version's run form.
        return {"turns": cleaned_turns(turns) if turns is not None and turns.is_valid() else [], "variables": variables}


def _new_uid(key: str, taken: set[str]) -> str:
    """The row's key, or the key with the lowest free "_<n>" for the same option again."""
    if key not in taken:
        return key
    return next(f"{key}_{n}" for n in range(2, 100) if f"{key}_{n}" not in taken)


def _detail(option: PromptVersion | Draft) -> str:
    detail = f"{option.model_name or 'no model'} · {option.provider}"
    return detail + f" — {option.description[:80]}" if option.description else detail


def _variable_field(name: str, *, required: bool = True) -> forms.CharField:
    return forms.CharField(
        required=required,
        label=f"{{{{{name}}}}}",
        error_messages={"required": f"Fill in {{{{{name}}}}}: a version uses it."},
    )


class RunAgainForm(forms.Form):
    repeats = forms.IntegerField(min_value=1, max_value=MAX_REPEATS, initial=1, label="Runs per column")
    # Within the column (a PositiveIntegerField): a hand-made 2**63 was a 500, not "out of date".
    batch = forms.IntegerField(min_value=1, max_value=2_147_483_647, widget=forms.HiddenInput)
    # The baseline column's number, kept in the page's URL after the new batch starts.
    baseline = forms.IntegerField(min_value=1, max_value=MAX_COLUMNS, required=False, widget=forms.HiddenInput)
