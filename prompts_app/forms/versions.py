"""The version builder's forms: model settings, messages (with parts and tool calls), tools.

JSON typed by people (tool schemas, extra parameters, response schemas) is parsed in
the field, so `cleaned_data` holds Python objects and each mistake is reported next
to the field that holds it, naming the message, part or tool it belongs to.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.utils import ErrorList

from prompts_app.forms.fields import JSONTextField
from prompts_app.jsontext import JSONTextError, load_json
from prompts_app.models import PROVIDER_CHOICES, SPEAKERS
from prompts_app.plain_int import plain_int

MAX_MESSAGES = 100
MAX_MESSAGE_CHARS = 100_000
MAX_PARTS = 20
MAX_TOOL_CALLS = 32
MAX_TOOLS = 64
MAX_SCHEMA_CHARS = 20_000
MAX_STOP = 4
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Parameters with their own field; the "other parameters" box may not set them again.
TYPED_PARAMS = (
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "response_format",
)
RESPONSE_FORMATS = [
    ("", "Default (not sent)"),
    ("text", "Text"),
    ("json_object", "JSON object"),
    ("json_schema", "JSON schema"),
]
DETAILS = [("", "Default"), ("auto", "auto"), ("low", "low"), ("high", "high")]
_INDEXES = re.compile(r"\d+")


class RowForm(forms.Form):
    """A form that is one row of a list; its errors say which row they are about."""

    def indexes(self) -> list[int]:
        return [int(n) for n in _INDEXES.findall(self.prefix or "")]

    def where(self) -> str:
        raise NotImplementedError

    def full_clean(self) -> None:
        super().full_clean()
        where = self.where()
        for name, errors in list((self._errors or {}).items()):
            self._errors[name] = ErrorList(
                [e if e.startswith(where) else f"{where}: {e}" for e in errors],
                error_class="nonfield" if name == NON_FIELD_ERRORS else None,
                renderer=errors.renderer,
                field_id=errors.field_id,  # the list's id, "<field id>_error", which the field's aria-describedby names
            )


class PartForm(RowForm):
    type = forms.ChoiceField(choices=[("text", "Text"), ("image_url", "Image URL")])
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    url = forms.CharField(required=False, max_length=20_000, label="Image URL")
    detail = forms.ChoiceField(choices=DETAILS, required=False)

    def where(self) -> str:
        m, p = (self.indexes() + [0, 0])[:2]
        return f"Message {m + 1}, part {p + 1}"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("type") == "image_url":
            url = (data.get("url") or "").strip()
            if not url:
                self.add_error("url", "an image part needs a URL.")
            elif not re.match(r"^(https?://|data:image/)", url):
                self.add_error("url", "the image URL must start with http://, https:// or data:image/.")
        return data

    def part(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["type"] == "text":
            return {"type": "text", "text": data["text"]}
        image: dict[str, Any] = {"url": data["url"].strip()}
        if data.get("detail"):
            image["detail"] = data["detail"]
        return {"type": "image_url", "image_url": image}


class ToolCallForm(RowForm):
    id = forms.CharField(max_length=200, label="Call id")
    name = forms.CharField(max_length=64, label="Function")
    arguments = forms.CharField(
        strip=False, widget=forms.Textarea(attrs={"rows": 2, "class": "code"}), label="Arguments (JSON)"
    )

    def where(self) -> str:
        m, c = (self.indexes() + [0, 0])[:2]
        return f"Message {m + 1}, tool call {c + 1}"

    def clean_arguments(self) -> str:
        # The API carries arguments as a JSON *string*: it is checked here but kept as typed.
        text = self.cleaned_data["arguments"]
        try:
            load_json(text)
        except JSONTextError as exc:
            raise ValidationError(f"the arguments are {exc}.") from None
        return text

    def call(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "id": data["id"],
            "type": "function",
            "function": {"name": data["name"], "arguments": data["arguments"]},
        }


class BaseRowFormSet(forms.BaseFormSet):
    def valid_forms(self) -> list[forms.Form]:
        return [f for f in self.forms if f.is_valid()]


PartFormSet = forms.formset_factory(PartForm, formset=BaseRowFormSet, extra=0, absolute_max=1000)
ToolCallFormSet = forms.formset_factory(ToolCallForm, formset=BaseRowFormSet, extra=0, absolute_max=1000)


class MessageForm(RowForm):
    role = forms.ChoiceField(choices=[(s, s) for s in SPEAKERS])  # the speaker; named as Maxim names it
    mode = forms.ChoiceField(choices=[("text", "Text"), ("parts", "Parts")], widget=forms.HiddenInput)
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3}), label="Content")
    tool_call_id = forms.CharField(required=False, max_length=200, label="Answers tool call id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        data = self.data if self.is_bound else None
        self.parts = PartFormSet(data, prefix=f"{self.prefix}-parts")
        self.tool_calls = ToolCallFormSet(data, prefix=f"{self.prefix}-calls")

    def where(self) -> str:
        return f"Message {self.indexes()[0] + 1}" if self.indexes() else "Message"

    def is_valid(self) -> bool:
        return all([super().is_valid(), self.parts.is_valid(), self.tool_calls.is_valid()])

    def texts(self) -> list[str]:
        """The message's text as typed (valid or not), for the live variable list and limits."""
        if self.data.get(f"{self.prefix}-mode") == "parts":
            return [f["text"].value() or "" for f in self.parts if f["type"].value() == "text"]
        return [self["text"].value() or ""]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        speaker, mode = data.get("role"), data.get("mode")
        text = data.get("text") or ""  # read before add_error, which drops the field from cleaned_data
        size = sum(len(t) for t in self.texts())
        too_long = size > MAX_MESSAGE_CHARS
        if too_long:  # one error per problem: a too-long message is not also "empty" or short of parts
            self.add_error("text", f"this message is {size:,} characters long; the limit is {MAX_MESSAGE_CHARS:,}.")
        calls = len(self.tool_calls.forms)
        if calls and speaker != "assistant":
            self.add_error("role", "only assistant messages can carry tool calls; change the role or remove the calls.")
        if calls > MAX_TOOL_CALLS:
            self.add_error("role", f"{calls} tool calls; the limit is {MAX_TOOL_CALLS} per message.")
        if speaker == "tool" and not (data.get("tool_call_id") or "").strip():
            self.add_error("tool_call_id", "a tool message needs the id of the tool call it answers.")
        if speaker != "tool" and data.get("tool_call_id"):
            self.add_error("tool_call_id", "only tool messages answer a tool call; clear this or change the role.")
        if too_long:
            pass
        elif mode == "parts":
            count = len(self.parts.forms)
            if count == 0:
                self.add_error("text", "add at least one part, or switch back to plain text.")
            elif count > MAX_PARTS:
                self.add_error("text", f"{count} parts; the limit is {MAX_PARTS} per message.")
        elif mode == "text" and not text.strip() and not (speaker == "assistant" and calls):
            self.add_error("text", "the message is empty; write something or remove it.")
        return data

    def message(self) -> dict[str, Any]:
        data = self.cleaned_data
        content: Any = data["text"] if data["mode"] == "text" else [f.part() for f in self.parts]
        message: dict[str, Any] = {"role": data["role"], "content": content}
        if self.tool_calls.forms:
            message["tool_calls"] = [f.call() for f in self.tool_calls]
        if data["role"] == "tool":
            message["tool_call_id"] = data["tool_call_id"].strip()
        return message


class MessageFormSet(BaseRowFormSet):
    def clean(self) -> None:
        count = len(self.forms)
        if count == 0:
            raise ValidationError("Add at least one message.")
        if count > MAX_MESSAGES:
            raise ValidationError(f"A version can have at most {MAX_MESSAGES} messages; this one has {count}.")
        seen_calls: set[str] = set()
        for form in self.forms:
            if form.cleaned_data.get("role") == "tool" and form.cleaned_data.get("tool_call_id"):
                call_id = form.cleaned_data["tool_call_id"].strip()
                if call_id not in seen_calls:
                    form.add_error(
                        "tool_call_id",
                        f"{form.where()}: no earlier assistant message has a tool call with id “{call_id}”.",
                    )
            for call in form.tool_calls.forms:
                seen_calls.add((call["id"].value() or "").strip())


MessageFormSetClass = forms.formset_factory(MessageForm, formset=MessageFormSet, extra=0, absolute_max=1000)


class ToolForm(RowForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    parameters = JSONTextField(
        expect_object=True,
        max_chars=MAX_SCHEMA_CHARS,
        required=True,
        label="Parameters (JSON Schema)",
        error_messages={"required": 'give the parameters as a JSON Schema, e.g. {"type": "object", "properties": {}}.'},
    )

    def where(self) -> str:
        return f"Tool {self.indexes()[0] + 1}" if self.indexes() else "Tool"

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not TOOL_NAME_RE.match(name):
            raise ValidationError("the name must be 1-64 letters, digits, _ or - (no spaces or dots).")
        return name

    def clean_parameters(self) -> dict[str, Any]:
        schema = self.cleaned_data["parameters"]
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            path = "/".join(str(p) for p in exc.path)
            raise ValidationError(f"this is not a valid JSON Schema{f' at {path}' if path else ''}: {exc.message}")
        if schema.get("type") != "object":
            raise ValidationError('the parameters schema must describe an object: "type": "object".')
        return schema

    def tool(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"name": data["name"], "description": data["description"], "parameters": data["parameters"]}


class ToolFormSet(BaseRowFormSet):
    def clean(self) -> None:
        if len(self.forms) > MAX_TOOLS:
            raise ValidationError(f"A version can have at most {MAX_TOOLS} tools; this one has {len(self.forms)}.")
        first: dict[str, int] = {}
        for number, form in enumerate(self.forms, start=1):
            name = form.cleaned_data.get("name")
            if not name:
                continue
            if name in first:
                form.add_error("name", f"Tool {number}: the name “{name}” is already used by tool {first[name]}.")
            else:
                first[name] = number


ToolFormSetClass = forms.formset_factory(ToolForm, formset=ToolFormSet, extra=0, absolute_max=1000)


class SettingsForm(forms.Form):
    """Description, model and the model's parameters. Empty parameters are not sent."""

    description = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    provider = forms.ChoiceField(choices=PROVIDER_CHOICES)
    model_name = forms.CharField(
        max_length=200,
        label="Model",
        error_messages={"required": "Choose a model, e.g. gpt-4o."},
        widget=forms.TextInput(attrs={"list": "model-suggestions", "autocomplete": "off"}),
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2, help_text="0–2")
    max_tokens = forms.IntegerField(required=False, min_value=1, label="Max tokens", help_text="≥ 1")
    top_p = forms.FloatField(required=False, min_value=0, max_value=1, label="Top p", help_text="0–1")
    frequency_penalty = forms.FloatField(required=False, min_value=-2, max_value=2, help_text="−2–2")
    presence_penalty = forms.FloatField(required=False, min_value=-2, max_value=2, help_text="−2–2")
    stop = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Stop sequences",
        help_text=f"One per line, at most {MAX_STOP}.",
    )
    response_format = forms.ChoiceField(choices=RESPONSE_FORMATS, required=False)
    response_schema = JSONTextField(expect_object=True, max_chars=MAX_SCHEMA_CHARS, label="Response JSON schema")
    extra = JSONTextField(
        expect_object=True,
        label="Other parameters (JSON object)",
        help_text='Anything else the provider accepts, e.g. {"seed": 7}.',
    )

    def clean_stop(self) -> list[str] | None:
        lines = [line.rstrip("\r") for line in self.cleaned_data["stop"].split("\n")]
        lines = [line for line in lines if line.strip()]
        if len(lines) > MAX_STOP:
            raise ValidationError(f"At most {MAX_STOP} stop sequences; you gave {len(lines)}.")
        return lines or None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        fmt, schema = data.get("response_format"), data.get("response_schema")
        if fmt == "json_schema" and schema is None and "response_schema" not in self.errors:
            self.add_error("response_schema", "Give the JSON schema the response must follow.")
        if fmt != "json_schema" and schema is not None:
            self.add_error("response_schema", "A schema is only used with the “JSON schema” response format.")
        extra = data.get("extra") or {}
        for key in extra:
            if key in TYPED_PARAMS:
                self.add_error("extra", f"“{key}” has its own field above; set it there instead.")
            elif key == "tools":
                self.add_error("extra", "Tools have their own section below; add them there.")
        return data

    def model_parameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        params: dict[str, Any] = dict(data.get("extra") or {})
        for key in ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty", "stop"):
            if data.get(key) is not None:
                params[key] = data[key]
        fmt = data.get("response_format")
        if fmt == "json_schema":
            params["response_format"] = {"type": "json_schema", "json_schema": data["response_schema"]}
        elif fmt:
            params["response_format"] = {"type": fmt}
        return params


# -- prompts and deployments --------------------------------------------------------------


class PromptForm(forms.Form):
    name = forms.CharField(max_length=300, error_messages={"required": "Give the prompt a name."})
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ConditionForm(RowForm):
    variable = forms.CharField(max_length=200, error_messages={"required": "name the variable to match."})
    operator = forms.ChoiceField(choices=[(o, o) for o in ("=", "<", ">", "<=", ">=")])
    value = forms.CharField(max_length=500, error_messages={"required": "give the value to compare with."})

    def where(self) -> str:
        return f"Condition {self.indexes()[0] + 1}" if self.indexes() else "Condition"


class ConditionFormSet(BaseRowFormSet):
    def clean(self) -> None:
        # Maxim's deploy contract has minItems: 1.
        if not self.forms:
            raise ValidationError("Add at least one deployment condition.")

    def conditions(self) -> list[dict[str, str]]:
        return [{k: f.cleaned_data[k].strip() for k in ("variable", "operator", "value")} for f in self.forms]


ConditionFormSetClass = forms.formset_factory(
    ConditionForm, formset=ConditionFormSet, extra=0, max_num=100, absolute_max=100
)


def condition_data(data: Any, action: str) -> dict[str, str]:
    """The deploy form's rows after `add_condition` / `remove_condition:i`, renumbered."""
    try:
        total = max(0, min(int(data.get("c-TOTAL_FORMS", 0)), 100))
    except (TypeError, ValueError):
        total = 0
    rows = [{k: str(data.get(f"c-{i}-{k}", "")) for k in ConditionForm.base_fields} for i in range(total)]
    if action == "add_condition":
        rows.append({"variable": "", "operator": "=", "value": ""})
    elif action.startswith("remove_condition:") and plain_int(action.split(":")[1]) is not None:
        index = int(action.split(":")[1])
        if index < len(rows):
            rows.pop(index)
    out = {
        "c-TOTAL_FORMS": str(len(rows)),
        "c-INITIAL_FORMS": str(len(rows)),
        "c-MIN_NUM_FORMS": "0",
        "c-MAX_NUM_FORMS": "100",
    }
    for i, row in enumerate(rows):
        out.update({f"c-{i}-{k}": v for k, v in row.items()})
    return out
