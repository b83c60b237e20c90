"""Forms for test sets: the set itself, one case, and a file to import."""

from __future__ import annotations

from typing import Any

from django import forms

from prompts_app import testset_files as files
from prompts_app.models import PromptVersion, TestCase, Workspace

MB = 1024 * 1024


class TestSetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class TurnsField(forms.CharField):
    """A JSON list of {role, content}, or plain text for a single user turn."""

    widget = forms.Textarea(attrs={"rows": 2})

    def to_python(self, value: Any) -> list[dict[str, str]]:
        text = super().to_python(value)
        turns, error = files.parse_turns(text)
        if error:
            raise forms.ValidationError(f"Turns: {error}")
        return turns

    def prepare_value(self, value: Any) -> Any:
        return files.turns_as_text(value) if isinstance(value, list) else value


class CellTextField(forms.CharField):
    """A cell's text: over `MAX_CELL_CHARS` it is refused with its length and the limit, naming
    what it is (`subject`). No maxlength in the page: the browser would cut a paste without a word."""

    widget = forms.Textarea

    def __init__(self, *, subject: str, rows: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(strip=False, widget=forms.Textarea(attrs={"rows": rows}), **kwargs)
        self.subject = subject

    def validate(self, value: Any) -> None:
        super().validate(value)
        if len(value or "") > files.MAX_CELL_CHARS:
            raise forms.ValidationError(
                f"{self.subject} is {len(value):,} characters long; the limit is {files.MAX_CELL_CHARS:,} characters.",
                code="too_long",
            )


def _value_of(name: str) -> str:
    return f"The value of {{{{{name}}}}}"


class CaseForm(forms.Form):
    """One field per variable of the set (`var-0`, `var-1`, …), one to add a variable,
    the expected output and the turns. A blank variable the case never had stays unset."""

    new_name = forms.CharField(label="New variable", required=False, max_length=200)
    new_value = CellTextField(label="Its value", subject="The new variable's value")
    expected_output = CellTextField(label="Expected output", subject="The expected output", rows=2)
    turns = TurnsField(
        label="Turns",
        required=False,
        strip=False,
        help_text="Optional: text for one user turn, or a JSON list of {role, content}.",
    )

    def __init__(
        self, data=None, *, variable_names: list[str], case: TestCase | None = None, auto_id: str = "id_%s"
    ) -> None:
        initial = {}
        if case is not None:
            initial = {"expected_output": case.expected_output, "turns": case.turns}
            initial.update({f"var-{i}": case.variables.get(name, "") for i, name in enumerate(variable_names)})
        super().__init__(data, initial=initial, auto_id=auto_id)
        self.variable_names = variable_names
        self.case_variables = set(case.variables) if case is not None else set()
        self.variable_fields = []
        for i, name in enumerate(variable_names):
            self.fields[f"var-{i}"] = CellTextField(label=name, subject=_value_of(name))
        self.order_fields([f"var-{i}" for i in range(len(variable_names))])

    def variable_boundfields(self) -> list[forms.BoundField]:
        return [self[f"var-{i}"] for i in range(len(self.variable_names))]

    def clean_new_name(self) -> str:
        name = self.cleaned_data["new_name"].strip()
        if not name:
            return ""
        if name.lower() in files.RESERVED:
            raise forms.ValidationError(f"“{name}” is a reserved column name; pick another.")
        if not files.VARIABLE_NAME_RE.fullmatch(name):
            raise forms.ValidationError("A variable name is letters, digits, _ . - and starts with a letter or _.")
        if name in self.variable_names:
            raise forms.ValidationError(
                f"This set already has a variable “{name}”: put its value in the “{name}” field above,"
                " or give the new variable another name."
            )
        if len(self.variable_names) >= files.MAX_VARIABLES:
            raise forms.ValidationError(f"A test set holds at most {files.MAX_VARIABLES} variables.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        variables = {}
        for i, name in enumerate(self.variable_names):
            value = cleaned.get(f"var-{i}", "")
            if value != "" or name in self.case_variables:
                variables[name] = value
        if cleaned.get("new_name"):
            variables[cleaned["new_name"]] = cleaned.get("new_value", "")
        elif cleaned.get("new_value") and "new_name" not in self.errors:  # a refused name has its own message
            self.add_error("new_name", "Give the new variable a name, or clear its value.")
        cleaned["variables"] = variables
        empty = not any(variables.values()) and not cleaned.get("expected_output") and not cleaned.get("turns")
        if empty and not self.errors:
            # New-user trial: "Add case" with every field blank said "Added case 49." and a batch would
            # have sent the prompt's {{variables}} unfilled.
            names = ", ".join(self.variable_names[:3]) + ("…" if len(self.variable_names) > 3 else "")
            self.add_error(
                None,
                f"This case is empty: give {names or 'a new variable'} a value, or an expected output or a turn.",
            )
        return cleaned


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV or JSONL file", help_text="UTF-8, up to 10 MB and 10,000 cases.")
    check_version = forms.ModelChoiceField(
        label="Check columns against a prompt version",
        required=False,
        queryset=PromptVersion.objects.none(),
        empty_label="(don't check)",
        error_messages={"invalid_choice": "That version is not in this workspace."},
    )

    def __init__(self, data=None, files_=None, *, workspace: Workspace) -> None:
        super().__init__(data, files_)
        self.fields["check_version"].queryset = (
            PromptVersion.objects.filter(prompt__workspace=workspace)
            .select_related("prompt")
            .order_by("prompt__name", "-number")
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > files.MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / MB:.1f} MB; the limit is {files.MAX_FILE_BYTES // MB} MB. Split it into smaller files."
            )
        return upload
