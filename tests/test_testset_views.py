"""Test set pages: who may read and edit, the case table, inline edits and their fallback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.models import TestCase, TestSet
from prompts_app.services import testsets as services


@pytest.fixture
def test_set(workspace, owner):
    test_set = services.create_test_set(workspace=workspace, name="Greetings", description="Hello cases", user=owner)
    services.add_case(test_set, variables={"name": "Ada", "company": "Acme"}, turns=[], expected_output="Hi Ada")
    services.add_case(
        test_set, variables={"name": "Bob"}, turns=[{"role": "user", "content": "Hey"}], expected_output="Hi Bob"
    )
    return test_set


def case_data(**overrides):
    data = {"var-0": "Ada", "var-1": "Acme", "new_name": "", "new_value": "", "expected_output": "Hi", "turns": ""}
    data.update(overrides)
    return data


def test_the_case_table_shows_variables_as_columns(client_for, viewer, test_set):
    page = client_for(viewer).get(reverse("testset_detail", args=[test_set.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-label="Cases in Greetings"' in html
    assert '<th scope="col" class="wrap as-typed">name</th>' in html and ">company</th>" in html
    assert "Hi Ada" in html and "Hi Bob" in html
    assert "Add a case" not in html  # a viewer reads only
    assert 'aria-label="Edit case 1"' not in html


def urls_for(test_set):
    case = test_set.cases.first()
    reads = [
        ("get", reverse("testset_list", args=[test_set.workspace_id])),
        ("get", reverse("testset_detail", args=[test_set.pk])),
        ("get", reverse("testset_export_csv", args=[test_set.pk])),
        ("get", reverse("testset_export_jsonl", args=[test_set.pk])),
        ("get", reverse("testcase_row", args=[case.pk])),
    ]
    writes = [
        ("post", reverse("testset_list", args=[test_set.workspace_id])),
        ("post", reverse("testset_update", args=[test_set.pk])),
        ("get", reverse("testset_delete", args=[test_set.pk])),
        ("post", reverse("testset_delete", args=[test_set.pk])),
        ("post", reverse("testcase_add", args=[test_set.pk])),
        ("get", reverse("testset_import", args=[test_set.pk])),
        ("post", reverse("testset_import", args=[test_set.pk])),
        ("get", reverse("testcase_edit", args=[case.pk])),
        ("post", reverse("testcase_edit", args=[case.pk])),
        ("post", reverse("testcase_delete", args=[case.pk])),
    ]
    return reads, writes


def test_a_stranger_gets_404_everywhere(client_for, outsider, test_set):
    reads, writes = urls_for(test_set)
    client = client_for(outsider)
    for method, url in reads + writes:
        assert getattr(client, method)(url, {"name": "Stolen"}).status_code == 404, url
    assert TestSet.objects.get(pk=test_set.pk).name == "Greetings"
    assert test_set.cases.count() == 2
    assert "Greetings" not in client.get(reverse("testset_index")).content.decode()


def test_a_viewer_reads_but_cannot_change_anything(client_for, viewer, test_set):
    reads, writes = urls_for(test_set)
    client = client_for(viewer)
    for method, url in reads:
        assert client.get(url).status_code in (200, 302), url  # a case's own URL redirects to its page
    for method, url in writes:
        assert getattr(client, method)(url, {"name": "Changed", **case_data()}).status_code == 403, url
    assert TestSet.objects.get(pk=test_set.pk).name == "Greetings"
    assert TestSet.objects.count() == 1 and test_set.cases.count() == 2


@pytest.mark.parametrize("role", ["editor", "owner"])
def test_editors_and_owners_create_rename_and_delete_sets(client_for, role, request, workspace):
    client = client_for(request.getfixturevalue(role))
    response = client.post(reverse("testset_list", args=[workspace.pk]), {"name": "Refunds", "description": ""})
    test_set = TestSet.objects.get(name="Refunds")
    assert response.status_code == 302 and response.url == reverse("testset_detail", args=[test_set.pk])
    client.post(reverse("testset_update", args=[test_set.pk]), {"name": "Refund requests", "description": "Angry ones"})
    test_set.refresh_from_db()
    assert (test_set.name, test_set.description) == ("Refund requests", "Angry ones")
    confirm = client.get(reverse("testset_delete", args=[test_set.pk]))
    assert "Delete the test set “Refund requests”?" in confirm.content.decode()
    assert TestSet.objects.filter(pk=test_set.pk).exists()  # asking is not deleting
    client.post(reverse("testset_delete", args=[test_set.pk]))
    assert not TestSet.objects.filter(pk=test_set.pk).exists()


def test_creating_a_set_without_a_name_keeps_the_description(client_for, editor, workspace):
    page = client_for(editor).post(
        reverse("testset_list", args=[workspace.pk]), {"name": "", "description": "Kept text"}
    )
    assert page.status_code == 200
    assert "Kept text" in page.content.decode() and 'role="alert"' in page.content.decode()
    assert not TestSet.objects.exists()


def test_an_editor_adds_a_case_with_a_new_variable(client_for, editor, test_set):
    data = case_data(**{"var-0": "Cy", "var-1": "", "new_name": "city", "new_value": "Oslo", "expected_output": "Hei"})
    response = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), data)
    case = test_set.cases.last()
    assert response.status_code == 302 and f"#case-{case.pk}" in response.url
    assert case.variables == {"name": "Cy", "city": "Oslo"}  # blank company: never set
    assert case.position == 3 and case.expected_output == "Hei"
    test_set.refresh_from_db()
    assert test_set.variable_names == ["name", "company", "city"]


def test_an_invalid_case_re_renders_with_the_input_kept(client_for, editor, test_set):
    data = case_data(**{"var-0": "Typed name", "new_name": "expected", "turns": '[{"role": "robot", "content": "x"}]'})
    page = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), data)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Typed name" in html
    assert "reserved column name" in html and "use one of system, user" in html
    assert html.count('role="alert"') >= 2
    assert test_set.cases.count() == 2


def test_inline_edit_swaps_the_row_for_a_form_and_back(client_for, editor, test_set):
    client = client_for(editor)
    case = test_set.cases.get(position=1)
    form = client.get(reverse("testcase_edit", args=[case.pk]), headers={"HX-Request": "true"})
    html = form.content.decode()
    assert html.lstrip().startswith(f'<tr id="case-{case.pk}" class="editing">')
    assert "<html" not in html and 'hx-target="#case-' in html and 'hx-sync="this:drop"' in html
    saved = client.post(
        reverse("testcase_edit", args=[case.pk]), case_data(**{"var-0": "Ada L."}), headers={"HX-Request": "true"}
    )
    assert saved.status_code == 200
    assert saved.content.decode().lstrip().startswith(f'<tr id="case-{case.pk}">')
    assert "Ada L." in saved.content.decode()
    case.refresh_from_db()
    assert case.variables == {"name": "Ada L.", "company": "Acme"} and case.expected_output == "Hi"


def test_an_invalid_inline_edit_comes_back_as_the_form_with_status_200(client_for, editor, test_set):
    case = test_set.cases.get(position=1)
    data = case_data(**{"var-0": "Still here", "new_value": "orphan"})
    response = client_for(editor).post(reverse("testcase_edit", args=[case.pk]), data, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and 'class="editing"' in html
    assert "Still here" in html and "orphan" in html and "Give the new variable a name" in html
    case.refresh_from_db()
    assert case.variables["name"] == "Ada"


def test_editing_without_javascript_is_a_page_and_a_redirect(client_for, editor, test_set):
    client = client_for(editor)
    case = test_set.cases.get(position=2)
    page = client.get(reverse("testcase_edit", args=[case.pk]))
    assert "<html" in page.content.decode() and "Edit case 2" in page.content.decode()
    bad = client.post(
        reverse("testcase_edit", args=[case.pk]), case_data(turns='[{"role": "user"}]', **{"var-0": "Kept"})
    )
    assert bad.status_code == 200 and "<html" in bad.content.decode()
    assert "turn 1 needs text content" in bad.content.decode() and "Kept" in bad.content.decode()
    good = client.post(reverse("testcase_edit", args=[case.pk]), case_data(turns="Plain question?"))
    assert good.status_code == 302 and good.url.endswith(f"?page=1#case-{case.pk}")
    case.refresh_from_db()
    assert case.turns == [{"role": "user", "content": "Plain question?"}]


def test_deleting_a_case_with_htmx_removes_its_row(client_for, editor, test_set):
    case = test_set.cases.get(position=1)
    response = client_for(editor).post(reverse("testcase_delete", args=[case.pk]), headers={"HX-Request": "true"})
    # The row swaps out; the count above the table says one case fewer (new-user trial: it kept "49 cases").
    assert response.status_code == 200
    assert response.content.decode() == '<p class="muted" id="case-count" hx-swap-oob="true">1 case</p>'
    assert not TestCase.objects.filter(pk=case.pk).exists()


def test_a_case_with_every_field_blank_is_refused_with_the_reason(client_for, editor, test_set):
    """New-user trial: an empty "Add case" said "Added case 49."; a batch would send the prompt's
    {{variables}} unfilled."""
    blank = case_data(**{"var-0": "", "var-1": "", "expected_output": ""})
    page = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), blank).content.decode()
    assert "This case is empty: give name, company a value, or an expected output or a turn." in page
    assert test_set.cases.count() == 2
    only_expected = case_data(**{"var-0": "", "var-1": "", "expected_output": "Hello"})
    assert client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), only_expected).status_code == 302


def test_cases_are_paginated_fifty_a_page(client_for, viewer, test_set):
    for n in range(60):
        services.add_case(test_set, variables={"name": f"person-{n:02d}"}, turns=[], expected_output="")
    client = client_for(viewer)
    first = client.get(reverse("testset_detail", args=[test_set.pk])).content.decode()
    second = client.get(reverse("testset_detail", args=[test_set.pk]) + "?page=2").content.decode()
    assert first.count('<tr id="case-') == 50 and second.count('<tr id="case-') == 12
    assert "person-47" in first and "person-48" in second and "Page 2 of 2" in second
    assert client.get(reverse("testset_detail", args=[test_set.pk]) + "?page=zz").status_code == 200


def test_a_case_from_another_workspace_cannot_be_edited_through_mine(
    client_for, make_workspace, outsider, editor, test_set
):
    theirs = make_workspace(owner=outsider, name="Other", maxim_id="ws-2")
    other_set = services.create_test_set(workspace=theirs, name="Theirs", description="", user=outsider)
    other_case = services.add_case(other_set, variables={"x": "1"}, turns=[], expected_output="")
    response = client_for(editor).post(reverse("testcase_edit", args=[other_case.pk]), case_data())
    assert response.status_code == 404
    other_case.refresh_from_db()
    assert other_case.variables == {"x": "1"}


def test_deleting_a_case_a_batch_ran_says_what_it_changes_there(client_for, editor, workspace, prompt):
    """New-user re-trial: "Delete case 48?" and a finished batch's matrix lost the row without a word."""
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=2, failing={})
    page = client_for(editor).get(reverse("testset_detail", args=[batch.test_set_id])).content.decode()
    said = "1 batch comparison ran it: its results for it stay in its exports but leave its matrix."
    assert page.count(f'hx-confirm="Delete case 1? {said}"') == 1 and page.count(said) == 2
