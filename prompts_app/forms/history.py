"""Filters for run history, its export, and the cost review. All GET forms: the URL is the state."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.utils.html import format_html, format_html_join

from prompts_app.models import PROVIDER_CHOICES, Run
from prompts_app.plain_int import plain_int
from prompts_app.selectors.history import Cursor, RunFilter, Scope

NOT_YOURS = "That %(what)s is not in any of your workspaces (or does not exist)."
MAX_COST_DAYS = 366


class QuickSelect(forms.Select):
    """Django's select, markup for markup, with its options written here instead of one
    template render each: the history filters have ~80 options, and through the widget
    templates they took ~8 ms of a page with a 50 ms budget (bench/bench_history.py)."""

    def render(self, name: str, value: object, attrs: dict | None = None, renderer: object = None) -> str:
        widget = self.get_context(name, value, attrs)["widget"]
        options = format_html_join(
            "",
            '\n  <option value="{}"{}>{}</option>\n',  # the option template ends with a newline
            (
                (str(option["value"]), _attrs(option["attrs"]), option["label"])
                for _group, group_options, _index in widget["optgroups"]
                for option in group_options
            ),
        )
        return format_html('<select name="{}"{}>{}\n</select>', widget["name"], _attrs(widget["attrs"]), options)


def _attrs(attrs: dict) -> str:
    """As django/forms/widgets/attrs.html writes them: in order, True bare, False left out."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value),)
            for name, value in attrs.items()
            if value is not False
        ),
    )


def _id_choice(label: str, what: str, choices: list[tuple[int, str]]) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        required=False,
        coerce=int,
        empty_value=None,
        widget=QuickSelect,
        choices=[("", f"All {what}s"), *choices],
        error_messages={"invalid_choice": NOT_YOURS % {"what": what}},
    )


class DayField(forms.DateField):
    """A UTC day within years we can compute with (one day past it must still be a date)."""

    widget = forms.DateInput(attrs={"type": "date"})

    def validate(self, value: dt.date | None) -> None:
        super().validate(value)
        if value is not None and not (FIRST_YEAR <= value.year <= LAST_YEAR):
            raise forms.ValidationError(f"Pick a day between {FIRST_YEAR} and {LAST_YEAR}.")


FIRST_YEAR, LAST_YEAR = 2000, 2999


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class HistoryFilterForm(forms.Form):
    """A workspace id the user is not a member of is an invalid choice: the page shows the
    message and no runs, the same as for an id that does not exist (nothing leaks)."""

    q = forms.CharField(
        label="Text",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "search words"}),
    )
    model = forms.CharField(
        label="Model",
        required=False,
        max_length=200,
        # The exact model name (the list suggests the ones seen): "any" read as if "mistral" would match
        # "mistral-small-latest" (new-user trial).
        widget=forms.TextInput(attrs={"list": "history-models", "placeholder": "any (exact name)"}),
    )
    provider = forms.ChoiceField(
        label="Provider", required=False, choices=[("", "All providers"), *PROVIDER_CHOICES], widget=QuickSelect
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Run.Status.choices], widget=QuickSelect
    )
    draft = forms.TypedChoiceField(
        label="Drafts",
        required=False,
        empty_value=None,
        coerce=lambda value: value == "yes",
        widget=QuickSelect,
        choices=[("", "Versions and drafts"), ("no", "Saved versions only"), ("yes", "Unsaved drafts only")],
    )
    date_from = DayField(label="From (UTC day)", required=False)
    date_to = DayField(label="To (UTC day)", required=False)
    before = forms.CharField(required=False, widget=forms.HiddenInput)  # cursor: runs older than this
    after = forms.CharField(required=False, widget=forms.HiddenInput)  # cursor: runs newer than this
    # A batch's runs (links from the batch page and from each run's batch label): no select of
    # every batch, which would cost a query and ~100 options a page; shown above the runs instead.
    batch = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data, *, scope: Scope) -> None:
        super().__init__(data)
        self.scope = scope
        self.batch_label: str | None = None  # the filtered batch's name, once clean_batch found it
        self.fields["workspace"] = _id_choice("Workspace", "workspace", [(w.pk, w.name) for w in scope.workspaces])
        self.fields["prompt"] = _id_choice("Prompt", "prompt", [(p.pk, p.name) for p in scope.prompts])
        self.fields["version"] = _id_choice(
            "Version", "version", [(v.pk, f"{v.prompt.name} v{v.number or v.maxim_id}") for v in scope.versions]
        )
        self.fields["user"] = _id_choice("User", "user", [(u.pk, u.get_username()) for u in scope.users])
        self.order_fields(
            [
                "q",
                "workspace",
                "prompt",
                "version",
                "draft",
                "model",
                "provider",
                "status",
                "user",
                "date_from",
                "date_to",
            ]
        )

    def _clean_cursor(self, name: str) -> Cursor | None:
        text = self.cleaned_data.get(name) or ""
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except ValueError:
            raise forms.ValidationError("This page link is broken. Start again from the newest runs.") from None

    def clean_before(self) -> Cursor | None:
        return self._clean_cursor("before")

    def clean_after(self) -> Cursor | None:
        return self._clean_cursor("after")

    def clean_batch(self) -> int | None:
        text = self.cleaned_data.get("batch") or ""
        if not text:
            return None
        pk = plain_int(text)
        self.batch_label = None if pk is None else self.scope.batch_label(pk)
        if self.batch_label is None:  # another workspace's batch reads as one that does not exist
            raise forms.ValidationError(NOT_YOURS % {"what": "batch"})
        return pk

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "“To” is before “From”.")
        return data

    def run_filter(self) -> RunFilter:
        data = self.cleaned_data
        chosen = data.get("workspace")
        return RunFilter(
            workspace_ids=[chosen] if chosen else list(self.scope.workspace_ids),
            prompt_id=data.get("prompt"),
            version_id=data.get("version"),
            model=data.get("model", "").strip(),
            provider=data.get("provider", ""),
            status=data.get("status", ""),
            user_id=data.get("user"),
            draft=data.get("draft"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            q=data.get("q", "").strip(),
            batch_id=data.get("batch"),
        )

    def querystring(self, *, drop: tuple[str, ...] = (), **changes: str) -> str:
        """The current filters as a query string (cursor and `drop` left out), with `changes` applied."""
        left_out = ("before", "after", *drop)
        params = {k: v for k, v in self.data.items() if k in self.fields and k not in left_out and v}
        params.update({k: v for k, v in changes.items() if v})
        return urlencode(params)

    @property
    def querystring_without_batch(self) -> str:
        return self.querystring(drop=("batch",))

    @property
    def errors_for_banner(self) -> list[str]:
        hidden = [*self.non_field_errors(), *self.errors.get("before", []), *self.errors.get("after", [])]
        hidden += [f"Batch: {error}" for error in self.errors.get("batch", [])]
        return list(hidden)


class CostReviewForm(forms.Form):
    PERIODS = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("custom", "Custom")]

    period = forms.ChoiceField(label="Period", required=False, choices=PERIODS, widget=QuickSelect)
    date_from = DayField(label="From (UTC day)", required=False)
    date_to = DayField(label="To (UTC day)", required=False)

    def __init__(self, data, *, scope: Scope) -> None:
        if not data.get("period"):  # so the select shows the period actually used
            data = data.copy()
            data["period"] = "custom" if data.get("date_from") or data.get("date_to") else "30"
        super().__init__(data)
        self.scope = scope
        self.fields["workspace"] = _id_choice("Workspace", "workspace", [(w.pk, w.name) for w in scope.workspaces])

    def clean(self) -> dict:
        data = super().clean()
        period = data.get("period") or "30"
        today = today_utc()
        if period != "custom":
            data["start"], data["end"] = today - dt.timedelta(days=int(period) - 1), today
            return data
        start, end = data.get("date_from"), data.get("date_to") or today
        if "date_from" in self.errors or "date_to" in self.errors:
            return data
        if start is None:
            self.add_error("date_from", "Pick the first day of the period.")
        elif start > end:
            self.add_error("date_to", "“To” is before “From”.")
        elif (end - start).days + 1 > MAX_COST_DAYS:
            self.add_error("date_from", f"Pick at most {MAX_COST_DAYS} days.")
        else:
            data["start"], data["end"] = start, end
        return data

    def workspace_ids(self) -> list[int]:
        chosen = self.cleaned_data.get("workspace")
        return [chosen] if chosen else list(self.scope.workspace_ids)
