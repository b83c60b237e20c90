"""The run form: turns (a formset), a value per `{{variable}}`, optional overrides.

`RunForm.cleaned_data` holds Python objects; `RunForm.inputs()` is the dict the run
service stores in `Run.input` ({"turns", "variables", "overrides"}).
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from prompts_app.forms.fields import JSONTextField
from prompts_app.forms.turns import TURN_PREFIX, cleaned_turns, posted_turns, rearranged_turns, turn_formset
from prompts_app.models import PROVIDER_CHOICES, PromptVersion
from prompts_app.run_input import MAX_MESSAGE_CHARS, has_content, input_problem, typed_size_problem

MAX_INPUT_CHARS = MAX_MESSAGE_CHARS  # the limit for one turn or value; run_input has the rest
VARIABLE_PREFIX = "var__"
NOTHING_TO_SEND = (
    "Nothing would be sent: this version's messages are empty and no turn has text. Type a message in a turn."
)


class RunForm(forms.Form):
    # Optional: a form without one (an old cached page) still runs, just without the double-submit guard.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    model_name = forms.CharField(required=False, max_length=200, label="Model")
    provider = forms.ChoiceField(required=False, choices=[("", "(version's)"), *PROVIDER_CHOICES])
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="Max tokens")
    extra_parameters = JSONTextField(
        expect_object=True,
        empty_value={},
        rows=3,
        label="Other parameters (JSON)",
        error_messages={"json": "%(Problem)s.", "json_object": 'Must be a JSON object, e.g. {"top_p": 0.9}.'},
    )

    def __init__(self, *args: Any, version: PromptVersion, turns: list[dict] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = version
        self.variable_names = version.variables()
        for name in self.variable_names:
            self.fields[VARIABLE_PREFIX + name] = forms.CharField(
                label=name, required=False, strip=False, widget=forms.Textarea(attrs={"rows": 1})
            )
        self.turns = turn_formset(self.data if self.is_bound else None, prefix=TURN_PREFIX, turns=turns)
        self.fields["model_name"].widget.attrs["placeholder"] = version.model_name
        self.fields["temperature"].widget.attrs["placeholder"] = str(version.model_parameters.get("temperature", ""))
        self.fields["max_tokens"].widget.attrs["placeholder"] = str(version.model_parameters.get("max_tokens", ""))

    @classmethod
    def blank(cls, version: PromptVersion) -> RunForm:
        return cls(version=version, initial={"idempotency_key": uuid.uuid4().hex})

    @classmethod
    def rearranged(cls, data: Any, *, version: PromptVersion, action: str) -> RunForm:
        """An unbound copy of a posted form with a turn added or removed; nothing typed is lost.

        Unbound, so a half-filled form is not covered in "required" errors while editing.
        """
        turns = rearranged_turns(posted_turns(data), action)
        initial = {name: data.get(name) for name in cls.base_fields if name in data}
        initial.update({k: v for k, v in data.items() if k.startswith(VARIABLE_PREFIX)})
        initial.setdefault("idempotency_key", uuid.uuid4().hex)
        return cls(version=version, initial=initial, turns=turns)

    def is_valid(self) -> bool:
        # Both always run, so every error shows at once.
        turns_ok = self.turns.is_valid()
        return super().is_valid() and turns_ok

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        missing = []
        for name in self.variable_names:
            value = cleaned.get(VARIABLE_PREFIX + name)
            if value is not None and not value.strip():
                missing.append(f"{{{{{name}}}}}")
                self.add_error(VARIABLE_PREFIX + name, f"Fill in a value for {{{{{name}}}}}.")
        if missing:
            them = "it" if len(missing) == 1 else "them"
            self.add_error(None, f"Fill in {', '.join(missing)}: this version's messages use {them}.")
        if not self.turns.is_valid():
            return cleaned
        turns = self.cleaned_turns()
        # Turns are optional: a version whose own messages hold the text runs from its variables alone.
        if not any(has_content(m) for m in [*self.version.messages, *turns]):
            self.add_error(None, NOTHING_TO_SEND)
        variables = {name: cleaned.get(VARIABLE_PREFIX + name) or "" for name in self.variable_names}
        extra = self.data.get("extra_parameters") or ""
        problem = typed_size_problem([("Other parameters (JSON)", extra)]) or input_problem(
            self.version.messages, {"turns": turns, "variables": variables}
        )
        if problem:
            self.add_error(None, problem)
        return cleaned

    def cleaned_turns(self) -> list[dict[str, str]]:
        """Turns with text, in order; empty turns are skipped rather than sent."""
        return cleaned_turns(self.turns)

    def inputs(self) -> dict[str, Any]:
        data = self.cleaned_data
        parameters = dict(data["extra_parameters"])
        if data["temperature"] is not None:
            parameters["temperature"] = data["temperature"]
        if data["max_tokens"] is not None:
            parameters["max_tokens"] = data["max_tokens"]
        overrides: dict[str, Any] = {}
        if data["model_name"].strip():
            overrides["model_name"] = data["model_name"].strip()
        if data["provider"]:
            overrides["provider"] = data["provider"]
        if parameters:
            overrides["model_parameters"] = parameters
        return {
            "turns": self.cleaned_turns(),
            "variables": {name: data[VARIABLE_PREFIX + name] for name in self.variable_names},
            "overrides": overrides,
        }

    def variable_fields(self) -> list[forms.BoundField]:
        return [self[VARIABLE_PREFIX + name] for name in self.variable_names]


def estimate_inputs(data: Any, version: PromptVersion) -> dict[str, Any]:
    """Best-effort inputs from a half-typed form, for the estimate: never raises."""
    variables = {name: data.get(VARIABLE_PREFIX + name) or "" for name in version.variables()}
    overrides: dict[str, Any] = {}
    model_name = (data.get("model_name") or "").strip()
    if model_name:
        overrides["model_name"] = model_name[:200]
    if data.get("provider") in dict(PROVIDER_CHOICES):
        overrides["provider"] = data["provider"]
    turns = [t for t in posted_turns(data) if t["content"].strip()]
    return {"turns": turns, "variables": variables, "overrides": overrides}
