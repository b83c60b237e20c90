"""Starting a batch above the soft budget is confirmed by a signed token of the estimate the person
saw (calls, cost, the batch's settings, the person), checked against the estimate made again at
the post: a flag, a forged or stale token, or a token of other figures starts nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.models import BatchComparison, Membership, Role, TestCase
from prompts_app.services import batch_preview, batches
from tests.test_batch_views import confirmation_of, form_data

pytestmark = pytest.mark.usefixtures("batch_inline")


@pytest.fixture
def over_budget(workspace):
    batches.set_soft_budget(workspace=workspace, budget_nano=1)


def ask(client, workspace, versions, test_set, **extra) -> str:
    response = client.post(reverse("batch_new", args=[workspace.pk]), form_data(versions, test_set, **extra))
    assert response.status_code == 200
    return response.content.decode()


def test_a_hand_made_post_with_a_flag_starts_nothing(
    client_for, editor, workspace, batch_test_set, two_versions, over_budget
):
    client = client_for(editor)
    for flag in ({"confirm_budget": "on"}, {"confirmation": "on"}, {"confirmation": "1", "confirm_budget": "1"}):
        page = ask(client, workspace, two_versions, batch_test_set, **flag)
        assert "Start anyway" in page and 'role="alert"' in page
    assert not BatchComparison.objects.exists()
    assert "That confirmation is not valid" in ask(client, workspace, two_versions, batch_test_set, confirmation="1")


def test_the_token_of_the_page_shown_starts_the_batch(
    client_for, editor, workspace, batch_test_set, two_versions, over_budget
):
    client = client_for(editor)
    token = confirmation_of(ask(client, workspace, two_versions, batch_test_set, title="Tone"))
    response = client.post(
        reverse("batch_new", args=[workspace.pk]),
        form_data(two_versions, batch_test_set, title="Tone", confirmation=token),
    )
    assert response.status_code == 302 and BatchComparison.objects.get().title == "Tone"


def test_when_the_estimate_changed_the_new_figures_are_shown_to_confirm_again(
    client_for, editor, workspace, batch_test_set, two_versions, over_budget
):
    client = client_for(editor)
    token = confirmation_of(ask(client, workspace, two_versions, batch_test_set, title="Tone"))
    TestCase.objects.create(test_set=batch_test_set, position=4, variables={"company": "Acme", "name": "Barbara"})
    page = ask(client, workspace, two_versions, batch_test_set, title="Tone", confirmation=token)
    assert not BatchComparison.objects.exists()
    assert "The estimate changed since you confirmed: 6 calls, now 8; estimated cost $" in page
    assert "Confirm again." in page and "8 calls" in page and 'value="Tone"' in page  # what was typed is kept
    again = confirmation_of(page)
    assert again != token
    response = client.post(
        reverse("batch_new", args=[workspace.pk]), form_data(two_versions, batch_test_set, confirmation=again)
    )
    assert response.status_code == 302 and BatchComparison.objects.get().total_cells == 8


def test_a_token_confirms_its_own_settings_only(
    client_for, editor, workspace, batch_test_set, two_versions, over_budget
):
    client = client_for(editor)
    token = confirmation_of(ask(client, workspace, two_versions, batch_test_set, repeats="1"))
    page = ask(client, workspace, two_versions, batch_test_set, repeats="3", confirmation=token)
    assert "That confirmation was for other settings" in page and "18 calls" in page
    page = ask(client, workspace, two_versions[:1], batch_test_set, confirmation=token)
    assert "That confirmation was for other settings" in page
    assert not BatchComparison.objects.exists()


def test_a_token_confirms_for_its_own_person_only(
    client_for, editor, make_user, workspace, batch_test_set, two_versions, over_budget
):
    token = confirmation_of(ask(client_for(editor), workspace, two_versions, batch_test_set))
    colleague = make_user("carol")
    Membership.objects.create(workspace=workspace, user=colleague, role=Role.EDITOR)
    page = ask(client_for(colleague), workspace, two_versions, batch_test_set, confirmation=token)
    assert "That confirmation was for other settings" in page and not BatchComparison.objects.exists()


def test_an_old_confirmation_is_shown_again(
    client_for, editor, workspace, batch_test_set, two_versions, over_budget, monkeypatch
):
    client = client_for(editor)
    token = confirmation_of(ask(client, workspace, two_versions, batch_test_set))
    monkeypatch.setattr(batch_preview, "CONFIRM_MAX_AGE", -1)  # the token is older than allowed
    page = ask(client, workspace, two_versions, batch_test_set, confirmation=token)
    assert "more than 30 minutes old" in page and not BatchComparison.objects.exists()


def test_a_lower_budget_since_the_confirmation_is_said(
    client_for, editor, workspace, batch_test_set, two_versions, monkeypatch
):
    batches.set_soft_budget(workspace=workspace, budget_nano=2)
    client = client_for(editor)
    token = confirmation_of(ask(client, workspace, two_versions, batch_test_set))
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    page = ask(client, workspace, two_versions, batch_test_set, confirmation=token)
    assert "soft budget $0.000000002, now $0.000000001" in page and not BatchComparison.objects.exists()


def test_a_huge_token_is_said_not_valid(client_for, editor, workspace, batch_test_set, two_versions, over_budget):
    page = ask(client_for(editor), workspace, two_versions, batch_test_set, title="Tone", confirmation="x" * 100_000)
    assert "That confirmation is not valid" in page and 'value="Tone"' in page and not BatchComparison.objects.exists()
