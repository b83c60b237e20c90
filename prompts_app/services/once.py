"""Create a row once per submitted form, whatever double clicks and resubmits do."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction

M = TypeVar("M", bound=models.Model)


def create_once(model: type[M], token: str, lookup: dict, create: Callable[[], M]) -> tuple[M, bool]:
    """`create()` unless a row matching `lookup` already exists. Returns (row, created).

    With an empty `token` there is nothing to match and the row is always created. Two
    requests racing with the same token meet at the unique constraint: the loser gets
    the winner's row, and created=False tells the caller not to act on it again.
    """
    if token:
        existing = model.objects.filter(**lookup).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        if not token:
            raise
        return model.objects.get(**lookup), False
