"""In real Chromium: an error of an earlier submit of the connect form is hidden while the next
request is under way ("Asking Maxim…"), and a key the person typed stays in its field after an
error about another field, without the server ever sending the key back."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BLANK = "Enter the API key (it cannot be blank)."


def test_the_blank_key_error_goes_while_the_typed_key_is_checked(page, browser_login, owner, fake_maxim):
    browser_login(owner)
    page.goto("/workspaces/connect/")
    page.get_by_label("API base URL").fill(fake_maxim.base_url)
    page.get_by_role("button", name="Find workspaces").click()
    page.get_by_text(BLANK).wait_for()

    held = []  # the next request waits here, so the page is seen while Maxim is being asked
    page.route("**/workspaces/connect/", lambda route: held.append(route))
    page.get_by_label("Maxim API key").press_sequentially(API_KEY, delay=30)
    page.get_by_role("button", name="Find workspaces").click()
    page.get_by_text("Asking Maxim…").wait_for()
    page.wait_for_timeout(300)
    assert not page.get_by_text(BLANK).is_visible()
    page.wait_for_function("() => true")  # lets the route handler run
    assert held, "the request was held"
    held[0].continue_()
    page.get_by_text("Staging (ws_staging)").wait_for()


def test_a_typed_key_stays_after_an_error_about_the_base_url(page, browser_login, owner, fake_maxim):
    browser_login(owner)
    page.goto("/workspaces/connect/")
    page.get_by_label("Maxim API key").press_sequentially(API_KEY, delay=30)
    page.get_by_label("API base URL").fill("not a url")
    with page.expect_response("**/workspaces/connect/") as answer:
        page.get_by_role("button", name="Find workspaces").click()
    assert API_KEY not in answer.value.text()  # never echoed by the server
    page.get_by_text("Enter a valid URL").wait_for()
    assert page.get_by_label("Maxim API key").input_value() == API_KEY
    page.get_by_label("API base URL").fill(fake_maxim.base_url)
    page.keyboard.press("Enter")
    page.get_by_text("Staging (ws_staging)").wait_for()
