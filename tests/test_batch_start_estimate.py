"""The live estimate of the new-batch form says why it cannot count yet, and replaces the column
errors of an earlier submit it can judge (an out-of-band swap), so a stale error never stays."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.test_batch_views import form_data

pytestmark = pytest.mark.django_db

TWICE = "Choose each version or draft once; use repeats to run one several times."


def test_the_same_version_twice_is_named_in_the_estimate(client_for, editor, workspace, batch_test_set, two_versions):
    query = form_data([two_versions[0], two_versions[0]], batch_test_set)
    said = client_for(editor).get(reverse("batch_estimate", args=[workspace.pk]), query).content.decode()
    assert TWICE in said and "Choose versions and a test set" not in said
    assert 'id="columns-errors" hx-swap-oob="true"' in said  # the form's column error says it too


def test_valid_columns_clear_the_column_error_of_an_earlier_submit(
    client_for, editor, workspace, batch_test_set, two_versions
):
    client = client_for(editor)
    page = client.post(reverse("batch_new", args=[workspace.pk]), form_data([], batch_test_set)).content.decode()
    assert "Choose 1 to 8 versions or drafts." in page and 'id="columns-errors"' in page
    said = client.get(
        reverse("batch_estimate", args=[workspace.pk]), form_data(two_versions, batch_test_set)
    ).content.decode()
    oob = said[said.index('id="columns-errors"') :]
    assert "6 calls" in said and "Choose 1 to 8" not in oob.split("</div>")[0]


def test_no_column_chosen_yet_leaves_the_form_errors_alone(client_for, editor, workspace, batch_test_set):
    said = (
        client_for(editor)
        .get(reverse("batch_estimate", args=[workspace.pk]), form_data([], batch_test_set))
        .content.decode()
    )
    assert "Choose versions and a test set" in said and "columns-errors" not in said


@pytest.mark.parametrize("mistake", [{"check_regex": "(unclosed"}, {"title": "t" * 301}, {"check_json": "[{"}])
def test_a_mistake_in_another_field_does_not_hide_the_estimate_of_the_versions_chosen(
    client_for, editor, workspace, batch_test_set, two_versions, mistake
):
    """New-user trial: after a submit with a bad regex the estimate read "Choose versions…" although
    two versions were chosen (the estimate judged the whole form)."""
    client = client_for(editor)
    data = form_data(two_versions, batch_test_set, **mistake)
    page = client.post(reverse("batch_new", args=[workspace.pk]), data).content.decode()
    assert 'role="alert"' in page and "6 calls" in page and "Choose versions and a test set" not in page
    assert 'hx-trigger="change delay:400ms from:#batch-form"' in page  # drawn already: no second request for it on load
    said = client.get(reverse("batch_estimate", args=[workspace.pk]), data).content.decode()
    assert "6 calls" in said and "Choose versions and a test set" not in said


def test_a_submit_with_no_version_chosen_still_asks_for_versions(client_for, editor, workspace, batch_test_set):
    data = form_data([], batch_test_set, check_regex="(unclosed")
    page = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data).content.decode()
    assert "Choose versions and a test set" in page and 'hx-trigger="change delay:400ms from:#batch-form, load"' in page
