"""A file with some bad rows: the preview counts the cases ready and the rows with errors, and an
explicit button imports only the good rows (the bad ones listed as skipped); a plain confirmation
stays all or nothing."""

from __future__ import annotations

from django.urls import reverse

from prompts_app.models import TestSetUpload
from tests.test_testset_import import test_set, upload  # noqa: F401 (fixture)

MIXED = b"name,city\nAda,Oslo\nBob\nCy,Rome\nDi,Bern,extra\nEd,Lima\n"  # lines 3 and 5 are bad


def test_the_preview_counts_ready_cases_and_bad_rows(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    html = " ".join(client.get(upload(client, test_set, MIXED).url).content.decode().split())
    assert "CSV: 3 cases ready, 2 rows with errors" in html and "CSV: 5 cases" not in html
    assert "Line 3: 1 cell, but the header has 2 columns." in html
    assert "Line 5: 3 cells, but the header has 2 columns." in html
    assert "Import the 3 good rows" in html and "skipped" in html


def test_importing_the_good_rows_skips_the_bad_ones(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    upload(client, test_set, MIXED)
    url = reverse("testset_import_confirm", args=[test_set.pk, TestSetUpload.objects.get().pk])
    done = client.post(url, {"good_only": "1"}, follow=True).content.decode()
    assert [c.variables["name"] for c in test_set.cases.all()] == ["Ada", "Cy", "Ed"]
    assert "Imported 3 cases from cases.csv; skipped 2 rows with errors." in done


def test_a_plain_confirmation_stays_all_or_nothing(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    upload(client, test_set, MIXED)
    url = reverse("testset_import_confirm", args=[test_set.pk, TestSetUpload.objects.get().pk])
    assert "The file has errors" in client.post(url, follow=True).content.decode()
    assert test_set.cases.count() == 0


def test_a_file_of_only_bad_rows_offers_no_partial_import(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    html = client.get(upload(client, test_set, b"name,city\nBob\nCy\n").url).content.decode()
    assert "good rows" not in html
    url = reverse("testset_import_confirm", args=[test_set.pk, TestSetUpload.objects.get().pk])
    client.post(url, {"good_only": "1"})
    assert test_set.cases.count() == 0
