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
    services.add_case(test_set, variables={"name": "Bob"}, turns=[{"role": "user", "content": "Hey"}],
                      expected_output="Hi Bob")  # fmt: skip
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
    assert "<th scope=\"col\" class=\"wrap\">name</th>" in html and ">company</th>" in html
    assert "Hi Ada" in html and "Hi Bob" in html
    assert "Add a case" not in html  # a viewer reads only
    assert 'aria-label="Edit case 1"' not in html
