"""Two tabs of the new-batch form have two submit tokens: the second start of the same batch (same
person, test set, columns in order, repeats and checks) while the first is preparing or running, or
within ten minutes, asks first: open the one started, or start another anyway."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import BatchComparison, Membership, Role
from prompts_app.services import batches
from tests.test_batch_start import token_of
from tests.test_batch_views import confirmation_of, form_data

pytestmark = pytest.mark.usefixtures("batch_inline")


def new_tab(client, workspace) -> str:
    return token_of(client.get(reverse("batch_new", args=[workspace.pk])).content.decode())


def post(client, workspace, versions, test_set, **extra):
    return client.post(reverse("batch_new", args=[workspace.pk]), form_data(versions, test_set, **extra))


def test_the_second_tab_is_told_the_batch_is_started_and_keeps_what_was_typed(
    client_for, editor, workspace, batch_test_set, two_versions
):
    client = client_for(editor)
    first_tab, second_tab = new_tab(client, workspace), new_tab(client, workspace)
    assert (
        post(client, workspace, two_versions, batch_test_set, title="Tone", submit_token=first_tab).status_code == 302
    )
    first = BatchComparison.objects.get()
    response = post(client, workspace, two_versions, batch_test_set, title="Tone again", submit_token=second_tab)
    page = response.content.decode()
    assert response.status_code == 200 and BatchComparison.objects.count() == 1
    alert = re.search(r'role="alert">(.*?)</div>', page, re.DOTALL).group(1)
    assert "You already started this batch less than a minute ago." in alert
    assert f'href="{reverse("batch_detail", args=[first.pk])}"' in page and "Open it" in page
    assert '<button type="submit" name="again" value="1">Start another anyway</button>' in page
    assert 'name="title" value="Tone again"' in page and f'value="{second_tab}"' in page

    again = post(
        client, workspace, two_versions, batch_test_set, title="Tone again", submit_token=second_tab, again="1"
    )
    assert again.status_code == 302 and BatchComparison.objects.count() == 2
    assert BatchComparison.objects.first().title == "Tone again"


@pytest.mark.parametrize(
    "change",
    [{"repeats": "2"}, {"check_contains": "Grace"}, {"case_filter": "Ada"}, {"reverse": True}],
    ids=["repeats", "checks", "cases", "column order"],
)
def test_another_batch_of_the_same_test_set_is_not_a_twin(
    client_for, editor, workspace, batch_test_set, two_versions, change
):
    client = client_for(editor)
    post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    versions = two_versions[::-1] if change.pop("reverse", False) else two_versions
    response = post(client, workspace, versions, batch_test_set, submit_token=new_tab(client, workspace), **change)
    assert response.status_code == 302 and BatchComparison.objects.count() == 2


def test_a_colleagues_batch_is_not_a_twin(client_for, editor, make_user, workspace, batch_test_set, two_versions):
    colleague = make_user("carol")
    Membership.objects.create(workspace=workspace, user=colleague, role=Role.EDITOR)
    post(client_for(colleague), workspace, two_versions, batch_test_set, submit_token="colleague")
    client = client_for(editor)
    response = post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    assert response.status_code == 302 and BatchComparison.objects.count() == 2


def test_a_twin_counts_while_it_runs_or_for_ten_minutes(client_for, editor, workspace, batch_test_set, two_versions):
    client = client_for(editor)
    post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    first = BatchComparison.objects.get()
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    BatchComparison.objects.filter(pk=first.pk).update(created_at=hour_ago, status=BatchComparison.Status.RUNNING)
    page = post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    assert "You already started this batch 1\xa0hour ago." in page.content.decode()
    BatchComparison.objects.filter(pk=first.pk).update(status=BatchComparison.Status.DONE)
    later = post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    assert later.status_code == 302 and BatchComparison.objects.count() == 2
    eight_minutes_ago = timezone.now() - dt.timedelta(minutes=8)
    BatchComparison.objects.update(created_at=eight_minutes_ago, status=BatchComparison.Status.DONE)
    page = post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    assert "You already started this batch 8\xa0minutes ago." in page.content.decode()


def test_start_another_anyway_above_the_budget_still_asks_to_confirm(
    client_for, editor, workspace, batch_test_set, two_versions
):
    client = client_for(editor)
    post(client, workspace, two_versions, batch_test_set, submit_token=new_tab(client, workspace))
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    tab = new_tab(client, workspace)
    assert (
        "Start another anyway"
        in post(client, workspace, two_versions, batch_test_set, submit_token=tab).content.decode()
    )
    confirm = post(client, workspace, two_versions, batch_test_set, submit_token=tab, again="1").content.decode()
    assert "Start anyway" in confirm and '<input type="hidden" name="again" value="1">' in confirm
    token = confirmation_of(confirm)
    started = post(client, workspace, two_versions, batch_test_set, submit_token=tab, again="1", confirmation=token)
    assert started.status_code == 302 and BatchComparison.objects.count() == 2


def test_start_another_anyway_needs_the_editor_role(
    client_for, viewer, outsider, workspace, batch_test_set, two_versions
):
    for user, status in ((viewer, 403), (outsider, 404)):
        response = post(client_for(user), workspace, two_versions, batch_test_set, submit_token="x", again="1")
        assert response.status_code == status
    assert not BatchComparison.objects.exists()


@pytest.mark.parametrize("token", [None, "", "forged", "f" * 65], ids=["absent", "empty", "forged", "too long"])
def test_a_post_without_the_pages_token_still_asks_before_starting_the_same_batch_again(
    client_for, editor, workspace, batch_test_set, two_versions, token
):
    """Hostile trial: the twin check ran only for posts carrying a submit token, so a script (or a
    form with the token stripped) started the same batch twice without a word."""
    client = client_for(editor)
    extra = {} if token is None else {"submit_token": token}
    assert post(client, workspace, two_versions, batch_test_set, title="Tone", **extra).status_code == 302
    response = post(client, workspace, two_versions, batch_test_set, title="Tone again", **extra)
    page = response.content.decode()
    assert response.status_code == 200 and BatchComparison.objects.count() == 1
    assert "You already started this batch less than a minute ago." in page
    assert 'name="title" value="Tone again"' in page  # the form is kept, to change or start anyway
    fresh = token_of(page)  # the page now carries a token of its own: starting anyway is one batch
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    for _ in range(2):  # a double click on "Start another anyway"
        post(client, workspace, two_versions, batch_test_set, title="Tone again", submit_token=fresh, again="1")
    assert BatchComparison.objects.count() == 2
