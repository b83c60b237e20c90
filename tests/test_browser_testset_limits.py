"""In real Chromium: a 200 KB paste into a case's value is refused with its length and the limit,
and the pasted text is still in the field, never cut to 100,000 characters by the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.services import testsets as services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_200_kb_paste_is_refused_and_kept(page, browser_login, editor, workspace, owner):
    test_set = services.create_test_set(workspace=workspace, name="Long", description="", user=owner)
    services.add_case(test_set, variables={"name": "Ada", "company": "Acme"}, turns=[], expected_output="Hi")
    browser_login(editor)
    page.goto(reverse("testset_detail", args=[test_set.pk]))
    adding = page.get_by_role("region", name="Add a case")
    adding.get_by_label("company", exact=True).fill("z" * 200_000)  # a paste: one input event
    adding.get_by_label("name", exact=True).press_sequentially("Bob", delay=40)
    adding.get_by_role("button", name="Add case").click()
    message = "The value of {{company}} is 200,000 characters long; the limit is 100,000 characters."
    page.get_by_role("alert").filter(has_text=message).wait_for()
    kept = page.get_by_role("region", name="Add a case").get_by_label("company", exact=True).input_value()
    assert len(kept) == 200_000 and test_set.cases.count() == 1
