"""Test sets: create, rename and delete them, edit their cases, import and export files.

The file format is prompts_app/testset_files.py; this module only stores what it parsed.
An import is two steps: `stage_upload` keeps the file on the server and the preview is
parsed from that row; `confirm_upload` parses the same bytes again and writes the cases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from prompts_app import testset_files as files
from prompts_app.models import PromptVersion, TestCase, TestSet, TestSetUpload, Workspace

BATCH_SIZE = 1000
UPLOAD_TTL = dt.timedelta(days=1)
PREVIEW_ROWS = 20


class ImportRefused(Exception):
    """The staged file cannot be imported (it has errors, or was already imported)."""


def create_test_set(*, workspace: Workspace, name: str, description: str, user) -> TestSet:
    return TestSet.objects.create(workspace=workspace, name=name, description=description, created_by=user)


def rename_test_set(test_set: TestSet, *, name: str, description: str) -> TestSet:
    test_set.name, test_set.description = name, description
    test_set.save(update_fields=["name", "description", "updated_at"])
    return test_set


def delete_test_set(test_set: TestSet) -> None:
    test_set.delete()


def _add_columns(test_set: TestSet, names: list[str]) -> None:
    new = [name for name in names if name not in test_set.variable_names]
    if new:
        test_set.variable_names = [*test_set.variable_names, *new]
        test_set.save(update_fields=["variable_names", "updated_at"])


def _next_position(test_set: TestSet) -> int:
    top = test_set.cases.aggregate(top=Max("position"))["top"]
    return 1 if top is None else top + 1


@transaction.atomic
def add_case(test_set: TestSet, *, variables: dict, turns: list, expected_output: str) -> TestCase:
    test_set = TestSet.objects.select_for_update().get(pk=test_set.pk)
    case = TestCase.objects.create(
        test_set=test_set,
        position=_next_position(test_set),
        variables=variables,
        turns=turns,
        expected_output=expected_output,
    )
    _add_columns(test_set, list(variables))
    return case


@transaction.atomic
def update_case(case: TestCase, *, variables: dict, turns: list, expected_output: str) -> TestCase:
    case.variables, case.turns, case.expected_output = variables, turns, expected_output
    case.save(update_fields=["variables", "turns", "expected_output", "updated_at"])
    _add_columns(case.test_set, list(variables))
    return case


def delete_case(case: TestCase) -> None:
    case.delete()


# --- import ---------------------------------------------------------------------------------


@dataclass
class Preview:
    upload: TestSetUpload
    parsed: files.ParsedFile
    warnings: list[str]

    @property
    def sample(self) -> list[dict]:
        """The first rows as the preview table shows them: one cell per column."""
        columns = self.parsed.columns
        return [
            {"row": row, "cells": [row.variables.get(name) for name in columns]}
            for row in self.parsed.rows[:PREVIEW_ROWS]
        ]

    @property
    def good_count(self) -> int:
        return len(self.parsed.rows) - len(self.parsed.bad_rows)

    @property
    def good_rows_only(self) -> bool:
        """Some rows are bad and some good: the good ones may be imported alone, on request."""
        return not self.parsed.problems and 0 < self.good_count < len(self.parsed.rows)

    @property
    def errors(self) -> list[str]:
        found = [f"Line {row.line}: {error}" for row in self.parsed.bad_rows for error in row.errors]
        return found

    @property
    def empty(self) -> list[str]:
        """ "Line 8: complaint is empty", one per variable a row leaves empty (rows without errors)."""
        return files.empty_warnings(self.parsed.empty_rows)

    @property
    def complete_count(self) -> int:
        """Rows that may be imported (all of them, or the good ones) with every needed variable."""
        usable = self.parsed.rows if self.parsed.ok else [r for r in self.parsed.rows if not r.errors]
        return sum(1 for row in usable if not row.empty)


def stage_upload(
    test_set: TestSet, *, user, filename: str, content: bytes, check_version: PromptVersion | None = None
) -> Preview:
    """Keep an uploaded file until the user confirms it, and parse it for the preview."""
    TestSetUpload.objects.filter(created_at__lt=timezone.now() - UPLOAD_TTL).delete()
    upload = TestSetUpload.objects.create(
        test_set=test_set,
        user=user,
        filename=filename[:255],
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        check_version=check_version,
    )
    return preview(upload)


def _parse(upload: TestSetUpload, content: bytes) -> files.ParsedFile:
    parsed = files.parse_file(content, filename=upload.filename)
    files.mark_empty(parsed, needed_variables(upload, parsed))
    return parsed


def needed_variables(upload: TestSetUpload, parsed: files.ParsedFile) -> list[str]:
    """What a case must fill: the {{variables}} of the version the file is checked against, else
    every variable the set will have (its own and the file's)."""
    if upload.check_version is not None:
        return upload.check_version.variables()
    return list(dict.fromkeys([*upload.test_set.variable_names, *parsed.columns]))


def preview(upload: TestSetUpload) -> Preview:
    parsed = _parse(upload, bytes(upload.content))
    warnings = []
    if upload.check_version is not None and not parsed.problems:
        warnings = files.version_warnings(parsed.columns, upload.check_version.variables())
    return Preview(upload=upload, parsed=parsed, warnings=warnings)


@dataclass(frozen=True)
class Imported:
    cases: int
    skipped: int  # rows with errors left out (only when the person chose to import the good rows)


def confirm_upload(upload: TestSetUpload, *, good_only: bool = False, complete_only: bool = False) -> Imported:
    """Write the staged file's cases after the set's existing ones; says how many. All or
    nothing unless `good_only` (the person's explicit choice): then rows with errors are skipped;
    `complete_only` (also theirs) skips rows that leave a needed variable empty."""
    content = bytes(upload.content)
    if hashlib.sha256(content).hexdigest() != upload.sha256:
        raise ImportRefused("The uploaded file changed on the server; upload it again.")
    parsed = _parse(upload, content)
    rows = [row for row in parsed.rows if not row.errors] if good_only else parsed.rows
    rows = [row for row in rows if not row.empty] if complete_only else rows
    if parsed.problems or not rows or (not good_only and not parsed.ok):
        raise ImportRefused("The file has errors; fix them and upload it again.")
    with transaction.atomic():
        # Locks the set: two confirmations of one upload import once, the second finds it gone.
        test_set = TestSet.objects.select_for_update().get(pk=upload.test_set_id)
        deleted, _ = TestSetUpload.objects.filter(pk=upload.pk).delete()
        if not deleted:
            raise ImportRefused("This file was already imported.")
        start = _next_position(test_set)
        cases = (
            TestCase(
                test_set=test_set,
                position=start + i,
                variables=row.variables,
                turns=row.turns,
                expected_output=row.expected_output,
            )
            for i, row in enumerate(rows)
        )
        _bulk_create(cases)
        _add_columns(test_set, files.ParsedFile(rows=rows).columns)
    return Imported(len(rows), len(parsed.rows) - len(rows))


def _bulk_create(cases: Iterator[TestCase]) -> None:
    batch: list[TestCase] = []
    for case in cases:
        batch.append(case)
        if len(batch) == BATCH_SIZE:
            TestCase.objects.bulk_create(batch)
            batch = []
    if batch:
        TestCase.objects.bulk_create(batch)


# --- export ---------------------------------------------------------------------------------


def export_cases(test_set: TestSet, chunk_size: int = 2000) -> Iterator[TestCase]:
    """The set's cases in order, read in chunks so a large set streams in little memory."""
    return test_set.cases.only("variables", "turns", "expected_output", "position").iterator(chunk_size=chunk_size)


def export_lines(test_set: TestSet, fmt: str) -> Iterator[str]:
    cases = export_cases(test_set)
    if fmt == "csv":
        return files.csv_lines(test_set.variable_names, cases)
    return files.jsonl_lines(cases)
