"""The form field for JSON typed by people: tool schemas, response schemas, extra model parameters."""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from prompts_app.jsontext import JSONTextError, load_json


class JSONTextField(forms.CharField):
    """JSON typed as text; `cleaned_data` holds the parsed value (`empty_value`, default None, when left empty).

    Messages name the mistake: "This is not valid JSON: ... (line 1, column 12)." Forms that show
    them on their own (not after "Tool 1: ") override the `json` and `json_object` messages;
    `%(problem)s` is the mistake, `%(Problem)s` the same capitalised.
    """

    default_error_messages = {
        "json": "This is %(problem)s.",
        "json_object": 'This must be a JSON object, like {"key": "value"}.',
        "too_long": "This is %(length)s characters long; the limit is %(limit)s.",
    }

    def __init__(
        self,
        *,
        expect_object: bool = False,
        max_chars: int | None = None,
        rows: int = 4,
        empty_value: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "class": "code", "spellcheck": "false"}))
        super().__init__(empty_value=empty_value, **kwargs)
        self.expect_object = expect_object
        self.max_chars = max_chars

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text in self.empty_values:
            return copy.copy(self.empty_value)  # a fresh {} per form: callers may add to it
        if self.max_chars and len(text) > self.max_chars:
            params = {"length": f"{len(text):,}", "limit": f"{self.max_chars:,}"}
            raise ValidationError(self.error_messages["too_long"], code="too_long", params=params)
        try:
            parsed = load_json(text)
        except JSONTextError as exc:
            problem = str(exc)
            params = {"problem": problem, "Problem": problem[:1].upper() + problem[1:]}
            raise ValidationError(self.error_messages["json"], code="json", params=params) from None
        if self.expect_object and not isinstance(parsed, dict):
            raise ValidationError(self.error_messages["json_object"], code="json_object")
        return parsed

    def prepare_value(self, value: Any) -> str:
        # A re-rendered bound form shows the text as typed; initial values are shown as JSON.
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, indent=2)
