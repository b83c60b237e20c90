"""A row that leaves a needed variable empty is not accepted silently (new-user trial): the preview
warns per row with the count, and the person imports the file anyway (the values stay as they are,
nothing is dropped) or only the complete rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.models import BatchComparison, TestSetUpload
from prompts_app.services import testsets as services
from tests.conftest import drive_batch, make_version
from tests.test_batch_views import confirmation_of, form_data
from tests.test_testset_import import test_set, upload  # noqa: F401 (fixture)

FILE = b"name,complaint\nAda,Late parcel\nBob,\nCy,  \nDi,Broken lid\n"  # lines 3 and 4 lack a complaint


def preview_of(client, test_set, data: bytes = FILE, **extra) -> str:  # noqa: F811
    return " ".join(client.get(upload(client, test_set, data, **extra).url).content.decode().split())


def confirm(client, test_set, **data):  # noqa: F811
    url = reverse("testset_import_confirm", args=[test_set.pk, TestSetUpload.objects.get().pk])
    return " ".join(client.post(url, data, follow=True).content.decode().split())


def test_the_preview_warns_row_by_row_with_the_count(client_for, editor, test_set):  # noqa: F811
    html = preview_of(client_for(editor), test_set)
    assert "2 rows leave a variable empty" in html
    assert '<li class="wrap">Line 3: complaint is empty</li>' in html
    assert '<li class="wrap">Line 4: complaint is empty</li>' in html and "Line 2:" not in html
    assert '<span class="badge warn">complaint is empty</span>' in html  # in the row itself
    assert "Import all 4 cases anyway" in html and "Import only the 2 complete rows" in html
    assert test_set.cases.count() == 0


def test_importing_anyway_keeps_every_row_as_it_was(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    preview_of(client, test_set)
    done = confirm(client, test_set)
    assert [c.variables for c in test_set.cases.all()] == [
        {"name": "Ada", "complaint": "Late parcel"},
        {"name": "Bob", "complaint": ""},
        {"name": "Cy", "complaint": "  "},
        {"name": "Di", "complaint": "Broken lid"},
    ]
    assert "Imported 4 cases from cases.csv." in done


def test_only_the_complete_rows_on_request(client_for, editor, test_set):  # noqa: F811
    client = client_for(editor)
    preview_of(client, test_set)
    done = confirm(client, test_set, complete_only="1")
    assert [c.variables["name"] for c in test_set.cases.all()] == ["Ada", "Di"]
    assert "Imported 2 cases from cases.csv; skipped 2 rows with an empty variable." in done


def test_the_version_checked_against_says_which_variables_are_needed(
    client_for,
    editor,
    test_set,  # noqa: F811
    version,
):
    """The version uses {{name}} and {{company}}: an empty column it does not use is no warning."""
    data = b"name,company,note\nAda,Acme,\nBob,,fine\n"
    html = preview_of(client_for(editor), test_set, data, check_version=version.pk)
    assert "1 row leaves a variable empty" in html and "Line 3: company is empty" in html
    assert "note is empty" not in html


def test_a_file_with_every_value_is_imported_without_a_warning(client_for, editor, test_set):  # noqa: F811
    html = preview_of(client_for(editor), test_set, b"name,complaint\nAda,Late\n")
    assert "empty" not in html and "Import 1 case" in html and "anyway" not in html


def test_the_needed_variables_include_the_sets_own(editor, test_set):  # noqa: F811
    test_set.variable_names = ["name", "complaint"]
    test_set.save()
    staged = services.stage_upload(test_set, user=editor, filename="x.jsonl", content=b'{"name": "Ada"}\n')
    assert staged.empty == ["Line 1: complaint is empty"] and staged.complete_count == 0


def test_a_value_of_only_invisible_characters_is_empty_too(client_for, editor, test_set):  # noqa: F811
    """Hostile trial: a zero-width space (or a NUL) shows nothing but passed as a value."""
    data = "name,complaint\nAda,Late parcel\nBob,\u200b\nCy,\u200b \ufeff\nDi,Broken lid\n".encode()
    html = preview_of(client_for(editor), test_set, data)
    assert "2 rows leave a variable empty" in html
    assert "Line 3: complaint is empty" in html and "Line 4: complaint is empty" in html


def test_a_one_column_files_empty_values_are_cases_warned_about_not_dropped(client_for, editor, test_set):  # noqa: F811
    """New-user trial: with `complaint` as the only column, rows of "" vanished without a word (4 cases
    of 6), while the same rows beside a second column were warned about. Empty lines are still no case."""
    data = b'complaint\nLate parcel\n""\nBroken lid\n\nWrong size\n""\n'
    html = preview_of(client_for(editor), test_set, data)
    assert "2 rows leave a variable empty" in html
    assert "Line 3: complaint is empty" in html and "Line 7: complaint is empty" in html
    assert "Import all 5 cases anyway" in html and "Import only the 3 complete rows" in html


SAID = (
    "In a batch, an empty value leaves nothing where its {{variable}} stands; "
    "a variable a case does not have at all is sent as typed, {{variable}} itself."
)


@pytest.mark.usefixtures("batch_inline")
def test_the_import_and_the_batch_start_say_what_a_batch_really_sends_for_an_empty_or_absent_value(
    client_for,
    editor,
    workspace,
    test_set,  # noqa: F811
    prompt,
    echo_maxim,
):
    """New-user trial: the import said a batch "would send the prompt with nothing in its place", the
    batch start that it "would send it as typed"; each was true of one kind of row only."""
    client = client_for(editor)
    data = b'{"name": "Ada", "company": "Acme"}\n{"name": "Bob", "company": ""}\n{"name": "Cy"}\n'
    html = preview_of(client, test_set, data, name="cases.jsonl")
    assert "2 rows leave a variable empty" in html and SAID in html
    confirm(client, test_set)
    version = make_version(prompt, 1)  # "You answer for {{company}}." then "Hello, I am {{name}}."
    url = reverse("batch_new", args=[workspace.pk])
    asked = client.post(url, form_data([version], test_set)).content.decode()
    assert SAID in " ".join(asked.split())
    client.post(url, form_data([version], test_set, confirmation=confirmation_of(asked)))
    drive_batch(BatchComparison.objects.get())
    sent = sorted((body["messages"][1]["content"], body["messages"][0]["content"]) for body in echo_maxim.sent)
    assert sent == [
        ("Hello, I am Ada.", "You answer for Acme."),
        ("Hello, I am Bob.", "You answer for ."),  # empty: nothing in its place
        ("Hello, I am Cy.", "You answer for {{company}}."),  # absent: as typed
    ]
