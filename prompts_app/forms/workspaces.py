"""Forms for connecting and managing workspaces. The API key is never rendered back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MinValueValidator

from prompts_app.services.workspaces import WorkspaceError, allowed_base_url

KEY_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"})


class BaseUrlField(forms.URLField):
    """An http(s) URL the outbound policy allows, normalised the way the client will use it."""

    default_error_messages = {"invalid": "Enter a valid URL, like https://api.getmaxim.ai."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", "API base URL")
        kwargs.setdefault("assume_scheme", "https")
        kwargs.setdefault("max_length", 500)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("The base URL must start with http:// or https://.")
        try:
            return allowed_base_url(value)
        except WorkspaceError as exc:
            raise forms.ValidationError(exc.message) from None


class ApiKeyField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", "Maxim API key")
        kwargs.setdefault("widget", KEY_WIDGET)
        kwargs.setdefault("max_length", 500)
        kwargs.setdefault("error_messages", {"required": "Enter the API key (it cannot be blank)."})
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
            raise forms.ValidationError("The key has spaces or characters a Maxim key cannot have; paste it again.")
        return value


class ConnectKeyForm(forms.Form):
    api_key = ApiKeyField(help_text="Stored encrypted; only its last 4 characters are ever shown again.")
    base_url = BaseUrlField(help_text="Change this only for a self-hosted Maxim.")

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {"base_url": settings.MAXIM_BASE_URL})
        super().__init__(*args, **kwargs)
        # After an error about another field, htmx keeps the key input the person typed into (the
        # old element, by id): the key stays in the browser and is still never sent back in HTML.
        self.fields["api_key"].widget.attrs["hx-preserve"] = "true"

    def add_error(self, field, error) -> None:
        super().add_error(field, error)
        if "api_key" in self._errors:  # a refused key is not kept: the person types it again
            self.fields["api_key"].widget.attrs.pop("hx-preserve", None)


class PickWorkspaceForm(forms.Form):
    """Step 2: a listed workspace, or (listing refused) a typed ID and display name."""

    maxim_id = forms.CharField(label="Maxim workspace ID", max_length=200)
    name = forms.CharField(label="Display name", max_length=200, required=False)

    def __init__(self, *args, choices: list[tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.listed = dict(choices) if choices is not None else None
        if choices is not None:
            self.fields["maxim_id"] = forms.ChoiceField(
                label="Workspace",
                choices=[(wid, f"{name} ({wid})") for wid, name in choices],
                widget=forms.RadioSelect,
                error_messages={"invalid_choice": "Pick one of the workspaces the key reaches."},
            )
            self.fields["name"].help_text = "Leave empty to use the name in Maxim."

    def clean_maxim_id(self) -> str:
        return self.cleaned_data["maxim_id"].strip()

    def display_name(self) -> str:
        name = self.cleaned_data.get("name", "").strip()
        if name:
            return name
        maxim_id = self.cleaned_data["maxim_id"]
        return (self.listed or {}).get(maxim_id, maxim_id)


class WorkspaceDetailsForm(forms.Form):
    name = forms.CharField(max_length=200)
    base_url = BaseUrlField()
    api_key = ApiKeyField(
        required=False,
        help_text="Needed only when the base URL changes: the key is checked at the new URL before saving.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("The name cannot be blank.")
        return name


class ReplaceKeyForm(forms.Form):
    api_key = ApiKeyField(label="New API key", help_text="Checked with Maxim first; saved only if it works.")
    # The base URL shown beside the key field: the key is sent there and nowhere else.
    base_url = forms.CharField(widget=forms.HiddenInput, max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Ids of its own: the details form on the same page has an api_key and a base_url too.
        kwargs.setdefault("auto_id", "id_replace_%s")
        super().__init__(*args, **kwargs)


_PRICE_RANGE = "Enter a price from 0 to 999999.999999 US dollars per 1M tokens."


class PriceForm(forms.Form):
    # A text input: a number input turns 1e400 into "" in the browser, which reads as "required".
    _usd = {
        "max_digits": 12,
        "decimal_places": 6,
        "widget": forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        "validators": [
            MinValueValidator(Decimal(0), message="A price cannot be negative."),
        ],
        "error_messages": {
            "invalid": "Enter a number of US dollars, like 0.15.",
            "max_digits": _PRICE_RANGE,
            "max_whole_digits": _PRICE_RANGE,
            "max_decimal_places": "Use at most 6 decimals (millionths of a dollar).",
        },
    }
    model_pattern = forms.CharField(label="Model (glob)", max_length=200)
    input_usd_per_mtok = forms.DecimalField(label="Input $/1M", **_usd)
    output_usd_per_mtok = forms.DecimalField(label="Output $/1M", **_usd)

    def clean_model_pattern(self) -> str:
        pattern = self.cleaned_data["model_pattern"].strip()
        if not pattern:
            raise forms.ValidationError("Enter a model name or pattern.")
        return pattern
