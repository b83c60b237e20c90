"""Importing test cases from CSV and JSONL: the preview, every kind of bad file, and the confirmation."""

from __future__ import annotations

import json

import pytest
from django.core.files import uploadhandler as django_uploadhandler
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prompts_app import testset_files as files
from prompts_app.models import TestSetUpload
from prompts_app.services import testsets as services

CSV = b"name,company,expected_output,input\nAda,Acme,Hi Ada,Hello there\nBob,Initech,Hi Bob,\n"


def parse(data: bytes | str, filename: str = "cases.csv") -> files.ParsedFile:
    return files.parse_file(data.encode() if isinstance(data, str) else data, filename=filename)


# --- the file format ------------------------------------------------------------------------


def test_csv_columns_become_variables_except_the_reserved_ones():
    parsed = parse(CSV)
    assert parsed.ok and parsed.format == "csv" and parsed.columns == ["name", "company"]
    first, second = parsed.rows
    assert (first.line, first.variables, first.expected_output) == (2, {"name": "Ada", "company": "Acme"}, "Hi Ada")
    assert first.turns == [{"role": "user", "content": "Hello there"}]
    assert second.turns == [] and second.expected_output == "Hi Bob"


def test_csv_with_a_bom_and_expected_and_json_turns():
    data = '\ufeffq,expected,turns\nwhy?,because,"[{""role"": ""user"", ""content"": ""hi""}, {""role"": ""assistant"", ""content"": ""yo""}]"\n'
    parsed = parse(data.encode("utf-8"))
    assert parsed.ok and parsed.columns == ["q"]
    assert parsed.rows[0].expected_output == "because"
    assert parsed.rows[0].turns == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


def test_multiline_cells_keep_the_line_numbers_of_later_rows():
    parsed = parse('a,b\n"one\ntwo",x\n3\n')
    assert parsed.rows[0].line == 2 and parsed.rows[0].variables["a"] == "one\ntwo"
    assert parsed.rows[1].line == 4 and parsed.rows[1].errors == ["1 cell, but the header has 2 columns."]
    assert not parsed.ok


def test_jsonl_reads_structured_and_flat_lines():
    lines = [
        {
            "variables": {"name": "Ada", "age": 36},
            "expected_output": "Hi",
            "turns": [{"role": "user", "content": "Hey"}],
        },
        {"name": "Bob", "expected": "Yo", "input": "Sup"},
        {"variables": {"name": "Cy"}},
    ]
    parsed = parse("\n".join(json.dumps(line) for line in lines) + "\n\n", "cases.jsonl")
    assert parsed.ok and parsed.format == "jsonl" and parsed.columns == ["name", "age"]
    assert parsed.rows[0].variables == {"name": "Ada", "age": "36"}
    assert parsed.rows[1].variables == {"name": "Bob"} and parsed.rows[1].turns == [{"role": "user", "content": "Sup"}]
    assert parsed.rows[2].expected_output == "" and parsed.rows[2].line == 3


def test_the_format_is_guessed_from_the_content_without_a_known_extension():
    assert parse('{"a": "1"}\n', "upload").format == "jsonl"
    assert parse("a\n1\n", "upload").format == "csv"


def test_malformed_jsonl_lines_are_reported_with_their_line_numbers():
    data = '{"a": "1"}\n{"a": \n[1, 2]\n{"variables": [1]}\n{"variables": {"a": "1"}, "extra": 1}\n{"turns": [{"role": "robot", "content": "x"}]}\n'
    parsed = parse(data, "x.jsonl")
    errors = {row.line: row.errors for row in parsed.bad_rows}
    assert errors[2] == ["not valid JSON (Expecting value at column 7)."]
    assert errors[3] == ["each line must be a JSON object."]
    assert errors[4] == ["“variables” must be an object of name: value."]
    assert errors[5] == ["unknown key extra (use variables, expected_output, turns)."]
    assert "turn 1 has role 'robot'" in errors[6][0]
    assert not parsed.ok and 1 not in errors


def test_malformed_csv_is_reported_with_a_line_number():
    assert parse('a,b\n1,2\n"3"x,4\n').problems == ["Line 3: this is not valid CSV (',' expected after '\"')."]
    never = "this is not valid CSV (a quote opened in this row is never closed)."
    assert parse('a,b\n1,2\n"never closed,4\n').problems == [f"Line 3: {never}"]
    # The row the quote opened in, not the file's last line (new-user trial: "Line 3" for line 2).
    assert parse('a,b\n1,"never closed\n3,4\n5,6\n').problems == [f"Line 2: {never}"]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("name,,x", "Line 1: column 2 has no name."),
        ("name,full name", "Line 1: column “full name” is not a variable name (letters, digits, _ . -)."),
        ("name,Name2,name", "Line 1: column “name” appears more than once."),
        ("expected,expected_output", "Line 1: use one of the columns expected_output or expected, not both."),
    ],
)
def test_bad_headers_are_refused(header, problem):
    assert problem in parse(header + "\n" + ",".join("x" * (header.count(",") + 1)) + "\n").problems


def test_a_file_that_is_not_utf8_is_refused_with_what_to_do():
    parsed = parse("name\nZoë\n".encode("latin-1"))
    assert parsed.problems == [
        "The file is not UTF-8 (byte 8 is not valid UTF-8). Save it as UTF-8 (with or without BOM) and upload it again."
    ]


def test_files_over_ten_megabytes_are_refused_before_parsing():
    assert parse(b"a\n" + b"x" * (10 * 1024 * 1024)).problems == [
        "The file is over 10 MB; split it into smaller files."
    ]


def test_more_than_ten_thousand_rows_are_refused():
    parsed = parse("n\n" + "x\n" * 10_001)
    assert parsed.problems == ["The file has more than 10,000 cases; split it into smaller files."]
    assert parse("n\n" + "x\n" * 10_000).ok


def test_cells_over_a_hundred_thousand_characters_are_errors():
    long_cell = "y" * 100_001
    assert parse(f"a,b\n{long_cell},1\n").rows[0].errors == ["a is longer than 100,000 characters."]
    beyond_csv_limit = "z" * 140_000  # longer than the csv module reads at all
    assert parse(f"a\n{beyond_csv_limit}\n").problems == [
        "Line 2: this is not valid CSV (a cell is longer than 100,000 characters)."
    ]
    jsonl = json.dumps({"variables": {"a": long_cell}})
    assert parse(jsonl, "x.jsonl").rows[0].errors == ["a is longer than 100,000 characters."]


def test_an_empty_file_has_no_cases():
    assert parse(b"").problems == ["The file has no cases."]
    assert parse(b"a,b\n").problems == ["The file has no cases."]


def test_version_warnings_name_missing_and_unused_variables():
    assert files.version_warnings(["name", "city"], ["company", "name"]) == [
        "The version uses variables the file does not have: company.",
        "Columns the version does not use: city.",
    ]
    assert files.version_warnings(["name"], ["name"]) == []


# --- the pages -------------------------------------------------------------------------------


@pytest.fixture
def test_set(workspace, owner):
    return services.create_test_set(workspace=workspace, name="Imports", description="", user=owner)


def upload(client, test_set, data: bytes, name: str = "cases.csv", **extra):
    url = reverse("testset_import", args=[test_set.pk])
    return client.post(url, {"file": SimpleUploadedFile(name, data), **extra})


def test_upload_shows_a_preview_and_saves_nothing_until_confirmed(client_for, editor, test_set, version):
    client = client_for(editor)
    response = upload(client, test_set, CSV, check_version=version.pk)
    staged = TestSetUpload.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("testset_import_preview", args=[test_set.pk, staged.pk])
    preview = client.get(response.url).content.decode()
    assert "CSV: 2 cases, variables name, company." in preview
    assert "1 turn: Hello there" in preview and "Import 2 cases" in preview
    assert "Columns the version does not use" not in preview  # the version uses company and name
    assert "The columns match the variables of Support reply v1." in preview
    assert test_set.cases.count() == 0
    done = client.post(reverse("testset_import_confirm", args=[test_set.pk, staged.pk]))
    assert done.status_code == 302 and done.url == reverse("testset_detail", args=[test_set.pk])
    assert [c.variables for c in test_set.cases.all()] == [
        {"name": "Ada", "company": "Acme"},
        {"name": "Bob", "company": "Initech"},
    ]
    assert [c.position for c in test_set.cases.all()] == [1, 2]
    test_set.refresh_from_db()
    assert test_set.variable_names == ["name", "company"]
    assert not TestSetUpload.objects.exists()


def test_confirming_twice_imports_once(client_for, editor, test_set):
    client = client_for(editor)
    upload(client, test_set, CSV)
    staged = TestSetUpload.objects.get()
    url = reverse("testset_import_confirm", args=[test_set.pk, staged.pk])
    client.post(url)
    again = client.post(url, follow=True)
    assert "That upload is gone" in again.content.decode()
    assert test_set.cases.count() == 2


def test_the_preview_lists_row_errors_and_offers_no_import(client_for, editor, test_set, version):
    client = client_for(editor)
    page = client.get(upload(client, test_set, b"name,city\nAda,Oslo\nBob\n", check_version=version.pk).url)
    html = page.content.decode()
    assert "Line 3: 1 cell, but the header has 2 columns." in html and 'role="alert"' in html
    assert "The version uses variables the file does not have: company." in html
    assert "Columns the version does not use: city." in html
    assert "Import 2 cases" not in html
    staged = TestSetUpload.objects.get()
    refused = client.post(reverse("testset_import_confirm", args=[test_set.pk, staged.pk]), follow=True)
    assert "The file has errors" in refused.content.decode()
    assert test_set.cases.count() == 0


def test_the_preview_shows_twenty_rows(client_for, editor, test_set):
    client = client_for(editor)
    data = "n\n" + "".join(f"row-{i:03d}\n" for i in range(30))
    html = client.get(upload(client, test_set, data.encode()).url).content.decode()
    assert "row-019" in html and "row-020" not in html and "The first 20 are shown." in html


def test_the_upload_form_refuses_a_file_over_the_limit_too(workspace, monkeypatch):
    from prompts_app.forms.testsets import UploadForm

    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    form = UploadForm({}, {"file": SimpleUploadedFile("big.csv", b"a\n" + b"x" * 2000)}, workspace=workspace)
    assert not form.is_valid()
    assert form.errors["file"] == ["The file is 0.0 MB; the limit is 0 MB. Split it into smaller files."]


def test_a_file_past_the_limit_is_dropped_while_it_is_read(client_for, editor, test_set, monkeypatch, settings):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100_000)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10**9  # so the kept part would be in memory, not a temp file
    stored = []
    original = django_uploadhandler.MemoryFileUploadHandler.receive_data_chunk
    monkeypatch.setattr(
        django_uploadhandler.MemoryFileUploadHandler,
        "receive_data_chunk",
        lambda self, data, start: stored.append(len(data)) or original(self, data, start),
    )
    page = upload(client_for(editor), test_set, b"a\n" + b"x" * 1_000_000)
    assert page.status_code == 200
    assert "The file is over 0 MB; split it into smaller files." in page.content.decode()
    assert sum(stored) <= 100_000  # the rest was never kept
    assert not TestSetUpload.objects.exists()


def test_the_import_form_still_needs_its_csrf_token(editor, test_set):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(reverse("testset_import", args=[test_set.pk]), {"file": SimpleUploadedFile("a.csv", CSV)})
    assert response.status_code == 403
    assert not TestSetUpload.objects.exists()


def test_a_bad_encoding_is_explained_in_the_preview(client_for, editor, test_set):
    client = client_for(editor)
    html = client.get(upload(client, test_set, "name\nZoë\n".encode("cp1252")).url).content.decode()
    assert "The file is not UTF-8" in html and "with or without BOM" in html


def test_a_version_from_another_workspace_is_not_a_choice(client_for, make_workspace, outsider, editor, test_set):
    from prompts_app.models import Prompt, PromptVersion

    theirs = make_workspace(owner=outsider, name="Other", maxim_id="ws-2")
    prompt = Prompt.objects.create(workspace=theirs, maxim_id="p-9", name="Secret prompt")
    other_version = PromptVersion.objects.create(prompt=prompt, maxim_id="v-9", number=1, messages=[])
    page = upload(client_for(editor), test_set, CSV, check_version=other_version.pk)
    assert page.status_code == 200 and "That version is not in this workspace." in page.content.decode()
    assert "Secret prompt" not in page.content.decode()


def test_someone_else_cannot_see_or_confirm_my_upload(client_for, editor, owner, test_set, make_workspace, outsider):
    upload(client_for(editor), test_set, CSV)
    staged = TestSetUpload.objects.get()
    other = client_for(owner)  # same workspace, different person
    assert (
        "That upload is gone"
        in other.get(reverse("testset_import_preview", args=[test_set.pk, staged.pk]), follow=True).content.decode()
    )
    other.post(reverse("testset_import_confirm", args=[test_set.pk, staged.pk]))
    assert test_set.cases.count() == 0
    # nor through a set of their own
    own_set = services.create_test_set(
        workspace=make_workspace(owner=outsider, name="O", maxim_id="ws-3"), name="Mine", description="", user=outsider
    )
    client_for(outsider).post(reverse("testset_import_confirm", args=[own_set.pk, staged.pk]))
    assert own_set.cases.count() == 0 and TestSetUpload.objects.filter(pk=staged.pk).exists()


def test_imports_append_after_existing_cases(client_for, editor, test_set):
    services.add_case(test_set, variables={"zeta": "1"}, turns=[], expected_output="")
    client = client_for(editor)
    upload(client, test_set, CSV)
    client.post(reverse("testset_import_confirm", args=[test_set.pk, TestSetUpload.objects.get().pk]))
    assert [c.position for c in test_set.cases.all()] == [1, 2, 3]
    test_set.refresh_from_db()
    assert test_set.variable_names == ["zeta", "name", "company"]


def test_a_file_with_more_variable_columns_than_a_set_holds_is_refused_at_once():
    header = ",".join(f"v{n}" for n in range(5_000))
    parsed = files.parse_file(
        (header + "\n" + ",".join("x" for _ in range(5_000)) + "\n").encode(), filename="wide.csv"
    )
    assert not parsed.ok
    assert parsed.problems == [
        f"Line 1: the file has 5,000 variable columns; a test set holds at most {files.MAX_VARIABLES}."
    ]


def test_jsonl_lines_with_too_many_variables_or_nested_too_deeply_are_refused():
    wide = json.dumps({"variables": {f"v{n}": "x" for n in range(files.MAX_VARIABLES + 1)}})
    parsed = files.parse_file((wide + "\n").encode(), filename="wide.jsonl")
    assert parsed.problems == [
        f"Line 1: {files.MAX_VARIABLES + 1} variables; a test set holds at most {files.MAX_VARIABLES}."
    ]
    deep = '{"variables": {"a": ' + "[" * 300_000 + "]" * 300_000 + "}}"
    parsed = files.parse_file((deep + "\n").encode(), filename="deep.jsonl")
    assert parsed.bad_rows and parsed.bad_rows[0].errors[0].startswith("nested too deeply")


def test_turns_that_look_like_json_but_are_broken_are_an_error_not_a_text_turn():
    turns, error = files.parse_turns('[{"role": "user", "content": "hi"')
    assert turns == [] and error.startswith("looks like a JSON list of turns but is not valid JSON")
    assert files.parse_turns("[quote] hello") == ([{"role": "user", "content": "[quote] hello"}], "")
