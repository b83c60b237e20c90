"""Starting a batch comparison: one batch per submitted form, a warning for variables the test set
lacks, a second step above the soft budget, and wording that reads right for one of anything."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import BatchComparison, TestCase
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import make_version
from tests.test_batch_views import confirmation_of, form_data

ONE_PLURAL = re.compile(r"\b1 (runs|calls|cases|cells|columns|versions)\b")


# The batch runs in the test's thread (its transaction holds the data).
pytestmark = pytest.mark.usefixtures("batch_inline")


def token_of(page: str) -> str:
    found = re.search(r'name="submit_token" value="(\w+)"', page)
    assert found, "the form carries a submit token"
    return found.group(1)


def test_the_same_form_posted_twice_opens_the_batch_the_first_post_started(
    client_for, editor, workspace, batch_test_set, two_versions
):
    client = client_for(editor)
    url = reverse("batch_new", args=[workspace.pk])
    token = token_of(client.get(url).content.decode())
    first = client.post(url, form_data(two_versions, batch_test_set, submit_token=token))
    again = client.post(
        url, form_data(two_versions, batch_test_set, submit_token=token)
    )  # double click, back + resubmit
    batch = BatchComparison.objects.get()
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("batch_detail", args=[batch.pk])
    assert batch.cells.count() == 6
    assert token_of(client.get(url).content.decode()) != token  # a new form is a new batch


def test_a_repeated_submit_is_recognised_even_after_the_budget_changed(workspace, batch_test_set, two_versions, editor):
    columns = [ColumnChoice(v) for v in two_versions]
    first = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=columns, user=editor, submit_token="t1"
    )
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    again = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=columns, user=editor, submit_token="t1"
    )
    assert again.pk == first.pk and BatchComparison.objects.count() == 1


def test_variables_the_test_set_lacks_are_named_before_starting(client_for, editor, workspace, batch_test_set, prompt):
    TestCase.objects.filter(test_set=batch_test_set, position=3).update(variables={"name": "Linus"})  # no company
    greeting = make_version(prompt, 1)
    signed = make_version(prompt, 2, messages=[{"role": "user", "content": "Hi {{name}}, {{signature}} here."}])
    client = client_for(editor)
    text = client.get(reverse("batch_estimate", args=[workspace.pk]), form_data([greeting, signed], batch_test_set))
    warning = re.search(r'<[^>]*role="alert"[^>]*>(.*?)</(div|section)>', text.content.decode(), re.DOTALL)
    assert warning, "the warning is an alert"
    said = " ".join(warning.group(1).split())
    assert "Support reply v1" in said and "company" in said and "1 of 3 cases" in said
    assert "Support reply v2" in said and "signature" in said and "3 of 3 cases" in said

    url = reverse("batch_new", args=[workspace.pk])
    asked = client.post(url, form_data([greeting, signed], batch_test_set)).content.decode()
    assert not BatchComparison.objects.exists()  # not started without a deliberate choice
    assert "signature" in asked and 'role="alert"' in asked
    assert (
        client.post(url, form_data([greeting, signed], batch_test_set, confirmation=confirmation_of(asked))).status_code
        == 302
    )
    assert BatchComparison.objects.count() == 1


def test_an_empty_value_is_named_before_starting_like_a_missing_one(
    client_for, editor, workspace, batch_test_set, prompt
):
    """New-user trial: a set imported "anyway" with empty values started at once, with no check step,
    although the import had warned about those rows."""
    TestCase.objects.filter(test_set=batch_test_set, position=2).update(variables={"name": "Ada", "company": " \u200b"})
    greeting = make_version(prompt, 1)
    client = client_for(editor)
    asked = client.post(reverse("batch_new", args=[workspace.pk]), form_data([greeting], batch_test_set))
    page = " ".join(asked.content.decode().split())
    assert not BatchComparison.objects.exists() and "Check before it starts" in page
    assert "company" in page and "is missing or empty in 1 of 3 cases" in page


def test_no_warning_when_every_case_has_every_variable(client_for, editor, workspace, batch_test_set, two_versions):
    response = client_for(editor).get(
        reverse("batch_estimate", args=[workspace.pk]), form_data(two_versions, batch_test_set)
    )
    assert 'role="alert"' not in response.content.decode()


def test_above_the_budget_a_second_step_states_calls_and_cost(
    client_for, editor, workspace, batch_test_set, two_versions
):
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    client = client_for(editor)
    url = reverse("batch_new", args=[workspace.pk])
    page = client.post(url, form_data(two_versions, batch_test_set, title="Tone")).content.decode()
    guess = batches.estimate(columns=[ColumnChoice(v) for v in two_versions], test_set=batch_test_set)
    from prompts_app.pricing import format_usd

    assert 'role="alert"' in page and "6 calls" in page and format_usd(guess.cost_nano) in page
    assert f"Start anyway — {format_usd(guess.cost_nano)}" in page
    assert 'type="checkbox" name="confirmation"' not in page  # a button, not a box to tick
    assert 'name="title" value="Tone"' in page  # what was typed goes with the confirmation
    assert "Change the batch" in page
    assert not BatchComparison.objects.exists()
    edit = client.post(url, form_data(two_versions, batch_test_set, title="Tone", step="edit")).content.decode()
    assert 'id="batch-form"' in edit and 'value="Tone"' in edit and not BatchComparison.objects.exists()


def test_an_unpriced_column_is_shown_as_unpriced_never_as_zero(client_for, editor, workspace, batch_test_set, prompt):
    batches.set_soft_budget(workspace=workspace, budget_nano=10**9)
    priced, unpriced = make_version(prompt, 1), make_version(prompt, 2, model="no-such-model-xyz")
    page = client_for(editor).post(
        reverse("batch_new", args=[workspace.pk]), form_data([priced, unpriced], batch_test_set)
    )
    text = page.content.decode()
    assert "1 unpriced" in text and "Start anyway — $" in text and "+ 1 unpriced column" in text
    assert not re.search(r"\$0\.00(?!\d)", text) and not BatchComparison.objects.exists()


def test_one_of_anything_is_singular(client_for, editor, workspace, batch_test_set, two_versions, echo_maxim):
    client = client_for(editor)
    query = form_data(two_versions[:1], batch_test_set, case_filter="Ada")
    estimate = client.get(reverse("batch_estimate", args=[workspace.pk]), query).content.decode()
    said = " ".join(estimate.split())
    assert "1 call:" in said and "1 case × 1 version" in said and not ONE_PLURAL.search(said)
    client.post(reverse("batch_new", args=[workspace.pk]), query)
    detail = client.get(reverse("batch_detail", args=[BatchComparison.objects.get().pk])).content.decode()
    assert "1 run per case" in detail and not ONE_PLURAL.search(detail)


def test_a_batch_whose_preparation_died_is_discarded_when_workers_start(
    workspace, batch_test_set, two_versions, editor
):
    """A process killed while making the cells leaves a PREPARING batch no worker runs; the next
    worker start deletes it (nothing of it was sent) and leaves one being prepared right now alone."""
    columns = [ColumnChoice(v) for v in two_versions]
    dead, alive = (
        batches.start_batch(
            workspace=workspace, test_set=batch_test_set, columns=columns, user=editor, submit_token=token, again=True
        )
        for token in ("dead", "alive")
    )
    long_ago = timezone.now() - batches.PREPARING_GIVE_UP - timezone.timedelta(seconds=1)
    BatchComparison.objects.filter(pk=dead.pk).update(status=BatchComparison.Status.PREPARING, created_at=long_ago)
    BatchComparison.objects.filter(pk=alive.pk).update(status=BatchComparison.Status.PREPARING)
    batch_worker.resume_all()
    assert list(BatchComparison.objects.values_list("pk", flat=True)) == [alive.pk]
