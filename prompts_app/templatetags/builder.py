from __future__ import annotations

from django import template
from django.forms import BoundField

register = template.Library()


@register.filter
def unknown_choice(field: BoundField) -> str:
    """The field's value when it is not one of its choices (e.g. a role Maxim has and we don't)."""
    value = field.value()
    if value in (None, "") or str(value) in {str(choice) for choice, _ in field.field.choices}:
        return ""
    return str(value)
