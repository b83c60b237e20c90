"""Conversation turns typed into a form (a role and a message each), shared by the run form
and the comparison form: the formset, reading turns back from a post, adding and removing one.

Adding or removing a turn re-draws the form from what was posted, so nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms import BaseFormSet, formset_factory

from prompts_app.plain_int import plain_int

MAX_TURNS = 50
TURN_PREFIX = "turn"
ADD_TURN = "add-turn"
REMOVE_TURN = "remove-turn-"  # + the turn's index
TURN_SPEAKERS = ("user", "assistant")  # who may say a turn typed into a run


class TurnForm(forms.Form):
    role = forms.ChoiceField(choices=[(s, s) for s in TURN_SPEAKERS], initial="user")  # the speaker, as Maxim names it
    content = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Message"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The role select sits beside the turn's label: it needs a name of its own for screen readers.
        number = (self.prefix or "").rsplit("-", 1)[-1]
        turn = "this turn" if plain_int(number) is None else f"turn {plain_int(number) + 1}"
        self.fields["role"].widget.attrs["aria-label"] = f"Role of {turn}"


TurnFormSet = formset_factory(TurnForm, extra=0, max_num=MAX_TURNS, validate_max=True)


def blank_turns() -> list[dict[str, str]]:
    return [{"role": "user", "content": ""}]


def turn_formset(data: Any = None, *, prefix: str = TURN_PREFIX, turns: list[dict] | None = None) -> BaseFormSet:
    """Bound to `data` when given; otherwise showing `turns` (default: one empty user turn)."""
    if data is not None:
        return TurnFormSet(data, prefix=prefix)
    return TurnFormSet(initial=turns or blank_turns(), prefix=prefix)


def posted_turns(data: Any, prefix: str = TURN_PREFIX) -> list[dict[str, str]]:
    """The turns in a post as typed (empty ones too); [] when the post has none under `prefix`."""
    try:
        count = min(int(data.get(f"{prefix}-TOTAL_FORMS", 0)), MAX_TURNS)
    except (TypeError, ValueError):
        count = 0
    turns = []
    for i in range(count):
        speaker = data.get(f"{prefix}-{i}-role")
        content = data.get(f"{prefix}-{i}-content", "")
        turns.append({"role": speaker if speaker in TURN_SPEAKERS else "user", "content": content})
    return turns


def rearranged_turns(turns: list[dict[str, str]], action: str) -> list[dict[str, str]]:
    """`turns` with one added (the role after the last one's) or removed (never the last one left)."""
    turns = list(turns)
    if action == ADD_TURN and len(turns) < MAX_TURNS:
        last_speaker = turns[-1]["role"] if turns else "assistant"
        turns.append({"role": "assistant" if last_speaker == "user" else "user", "content": ""})
    elif action.startswith(REMOVE_TURN) and plain_int(action.removeprefix(REMOVE_TURN)) is not None:
        index = int(action.removeprefix(REMOVE_TURN))
        if 0 <= index < len(turns) and len(turns) > 1:
            del turns[index]
    return turns


def cleaned_turns(formset: BaseFormSet) -> list[dict[str, str]]:
    """Turns with text, in order; empty turns are skipped rather than sent. Call after is_valid()."""
    return [
        {"role": form.cleaned_data["role"], "content": form.cleaned_data["content"]}
        for form in formset.forms
        if form.cleaned_data.get("content", "").strip()
    ]
