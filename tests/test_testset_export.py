"""Exporting a test set as CSV and JSONL: streamed, safe in a spreadsheet, and read back by import as it was."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app import testset_files as files
from prompts_app.services import testsets as services

CASES = [
    ({"name": "Ada", "formula": "=1+1"}, [], 'Hi Ada, "quoted", with, commas'),
    ({"name": "Bob", "formula": "-5"}, [{"role": "user", "content": "Hello\nthere"}], "'=already"),
    (
        {"name": "Ünïcode ✓", "formula": "@sum"},
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        "",
    ),
    (
        {"name": "Dee", "formula": "plain"},
        [{"role": "user", "content": '[{"role": "user", "content": "x"}]'}],
        "  spaced  ",
    ),
]


@pytest.fixture
def test_set(workspace, owner):
    test_set = services.create_test_set(workspace=workspace, name="Round trip", description="", user=owner)
    for variables, turns, expected in CASES:
        services.add_case(test_set, variables=variables, turns=turns, expected_output=expected)
    return test_set


def exported(client, test_set, fmt: str) -> bytes:
    response = client.get(reverse(f"testset_export_{fmt}", args=[test_set.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="test-set-{test_set.pk}.{fmt}"'
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_gives_the_same_cases(client_for, viewer, test_set, fmt):
    data = exported(client_for(viewer), test_set, fmt)
    parsed = files.parse_file(data, filename=f"x.{fmt}")
    assert parsed.ok, parsed.bad_rows or parsed.problems
    assert [(row.variables, row.turns, row.expected_output) for row in parsed.rows] == CASES


def test_csv_export_defuses_spreadsheet_formulas(client_for, viewer, test_set):
    text = exported(client_for(viewer), test_set, "csv").decode()
    assert text.splitlines()[0] == "name,formula,expected_output,turns"
    assert "'=1+1" in text and "'-5" in text and "'@sum" in text and "''=already" in text


def test_a_round_trip_through_the_pages_copies_a_set(client_for, editor, test_set, workspace):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from prompts_app.models import TestSetUpload

    client = client_for(editor)
    copy = services.create_test_set(workspace=workspace, name="Copy", description="", user=editor)
    data = exported(client, test_set, "jsonl")
    client.post(reverse("testset_import", args=[copy.pk]), {"file": SimpleUploadedFile("copy.jsonl", data)})
    client.post(reverse("testset_import_confirm", args=[copy.pk, TestSetUpload.objects.get().pk]))
    assert [(c.variables, c.turns, c.expected_output) for c in copy.cases.all()] == CASES
