"""A case's values and expected output longer than a cell may hold are refused with the length
and the limit, never cut short (by the browser's maxlength or the server), and the text is kept."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.test_testset_views import case_data, test_set  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
BIG = "y" * 200_000


def test_a_value_longer_than_a_cell_is_refused_with_the_text_kept(client_for, editor, test_set):  # noqa: F811
    page = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), case_data(**{"var-1": BIG}))
    html = page.content.decode()
    assert page.status_code == 200 and test_set.cases.count() == 2
    assert "The value of {{company}} is 200,000 characters long; the limit is 100,000 characters." in html
    assert BIG in html and 'role="alert"' in html


def test_a_long_expected_output_is_refused_too(client_for, editor, test_set):  # noqa: F811
    page = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), case_data(expected_output=BIG))
    html = page.content.decode()
    assert "The expected output is 200,000 characters long; the limit is 100,000 characters." in html
    assert BIG in html and test_set.cases.count() == 2


def test_the_form_never_lets_the_browser_cut_a_paste(client_for, editor, test_set):  # noqa: F811
    html = client_for(editor).get(reverse("testset_detail", args=[test_set.pk])).content.decode()
    assert 'id="add-expected_output"' in html and 'maxlength="100000"' not in html


def test_a_new_variable_named_like_an_existing_one_gets_one_clear_message(client_for, editor, test_set):  # noqa: F811
    data = case_data(new_name="company", new_value="Globex")
    html = client_for(editor).post(reverse("testcase_add", args=[test_set.pk]), data).content.decode()
    assert "This set already has a variable “company”: put its value in the “company” field" in html
    assert "Give the new variable a name" not in html and "Globex" in html
