"""The form renderer: project templates (so `{{ field.as_field_group }}` uses ours) for every form."""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    # One field template for every form: label, widget, help and errors the same way on every page.
    field_template_name = "prompts_app/field.html"
