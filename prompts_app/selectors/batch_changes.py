"""Two batches of the same test set, compared: per version present in both, the cases that went
from pass to fail and from fail to pass.

A case passes in a column when all its finished cells there passed their checks, and fails when
one of them failed (selectors.batches.FAILING: a failed check or a run Maxim refused; a run the
dashboard interrupted is neither); cases without checks or not finished yet are neither. The earlier batch is "before" whichever page the comparison is opened from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from prompts_app.models import BatchCell, BatchColumn, BatchComparison, TestCase
from prompts_app.selectors.batches import FAILING

SHOWN_CASES = 100


@dataclass
class VersionChanges:
    before: BatchColumn
    after: BatchColumn
    broke: list[TestCase]  # passed before, fail now
    broke_count: int
    fixed: list[TestCase]  # failed before, pass now
    fixed_count: int

    @property
    def tables(self) -> list[tuple[str, list[TestCase], int]]:
        return [
            ("from pass to fail", self.broke, self.broke_count),
            ("from fail to pass", self.fixed, self.fixed_count),
        ]


def comparable_batches(batch: BatchComparison) -> QuerySet[BatchComparison]:
    """Other batches of the same test set in the same workspace, newest first."""
    return BatchComparison.objects.filter(workspace_id=batch.workspace_id, test_set_id=batch.test_set_id).exclude(
        pk=batch.pk
    )[:50]


def in_order(one: BatchComparison, other: BatchComparison) -> tuple[BatchComparison, BatchComparison]:
    return tuple(sorted([one, other], key=lambda b: (b.created_at, b.pk)))  # type: ignore[return-value]


def _key(column: BatchColumn) -> tuple[int, str | None]:
    """Columns are the same version when they run the same saved version, or the same draft."""
    draft = None if column.draft_content is None else json.dumps(column.draft_content, sort_keys=True)
    return column.version_id, draft


def version_pairs(before: BatchComparison, after: BatchComparison) -> list[tuple[BatchColumn, BatchColumn]]:
    earlier = {_key(c): c for c in before.columns.all()}
    return [(earlier[_key(c)], c) for c in after.columns.all() if _key(c) in earlier]


def _fails(column: BatchColumn):
    return Exists(BatchCell.objects.filter(column=column, case_id=OuterRef("pk")).filter(FAILING))


def _passes(column: BatchColumn):
    return Exists(BatchCell.objects.filter(column=column, case_id=OuterRef("pk"), passed=True)) & ~_fails(column)


def changes(before: BatchComparison, after: BatchComparison) -> list[VersionChanges]:
    """Per version in both batches, the cases whose outcome flipped (the first SHOWN_CASES of each)."""
    cases = after.test_set.cases.order_by("position", "id").only("pk", "test_set_id", "position", "variables")
    found = []
    for old, new in version_pairs(before, after):
        broke = cases.filter(_passes(old) & _fails(new))
        fixed = cases.filter(_fails(old) & _passes(new))
        found.append(
            VersionChanges(old, new, list(broke[:SHOWN_CASES]), broke.count(), list(fixed[:SHOWN_CASES]), fixed.count())
        )
    return found
