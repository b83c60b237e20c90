"""History names each batch run's batch and filters to one batch's runs (issue #12: "History, costs and
exports count batch runs like any other run, labelled with their batch"; new-user trial: a badge
reading only "batch" told nobody which one)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app.models import BatchComparison
from tests.batch_seed import seed
from tests.conftest import make_run, make_version
from tests.test_export import body_of

pytestmark = pytest.mark.django_db

LONG = "Tone of the spring support replies, second try"


@pytest.fixture
def batch(workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=3, failing={})
    batch.title = LONG
    batch.save(update_fields=["title"])
    make_run(prompt.versions.get(number=1), editor)  # a run of no batch
    return batch


def history(client, **query) -> str:
    return client.get(reverse("run_history"), query).content.decode()


def test_each_batch_run_is_labelled_with_its_batchs_name_linking_to_that_batchs_runs(client_for, editor, batch):
    page = history(client_for(editor))
    label = (
        f'<a class="badge batch" href="/runs/?batch={batch.pk}" title="Batch: {LONG}"'
        f' aria-label="Batch {LONG}: show only its runs"><bdi>Tone of the spring support…</bdi></a>'
    )
    assert page.count(label) == 6 and ">batch</a>" not in page


def test_an_untitled_batch_is_named_as_its_page_names_it(client_for, editor, workspace, prompt):
    untitled = seed(workspace, prompt, editor, cases=1, failing={})
    page = history(client_for(editor))
    assert page.count(f"<bdi>{untitled}</bdi>") == 2 and str(untitled) == f"Batch {untitled.pk}"


def test_the_batch_names_cost_one_query_for_the_page_not_one_per_row(client_for, editor, batch, workspace, prompt):
    seed(workspace, prompt, editor, cases=2, failing={})
    client = client_for(editor)
    history(client)  # sessions and the like read once
    with CaptureQueriesContext(connection) as captured:
        history(client)
    read = [q["sql"] for q in captured if "prompts_app_batchcomparison" in q["sql"]]
    assert len(read) == 1


def test_filtered_to_a_batch_history_shows_its_runs_its_totals_and_how_to_clear_it(client_for, editor, batch):
    page = history(client_for(editor), batch=str(batch.pk))
    assert page.count('class="badge batch"') == 6  # the other run is not shown
    assert "<strong>6</strong> runs" in page  # totals of the batch's runs, not of the workspace's 7
    assert f'Only the runs of batch <a href="/batches/{batch.pk}/"><bdi>{LONG}</bdi></a>' in page
    assert f'<input type="hidden" name="batch" value="{batch.pk}">' in page  # kept when other filters change
    assert 'href="/runs/" data-drop-param="batch">Remove the batch filter</a>' in page
    assert f"batch={batch.pk}" in page.split("Export:")[1].split("</p>")[0]  # the export is of these runs too


def test_clearing_the_batch_keeps_the_other_filters(client_for, editor, batch):
    page = history(client_for(editor), batch=str(batch.pk), status="success")
    assert 'href="/runs/?status=success" data-drop-param="batch">Remove the batch filter</a>' in page


def test_a_runs_batch_label_keeps_the_other_filters(client_for, editor, batch):
    """New-user trial: the label of a run in a filtered history opened the batch's runs of every
    model, status and date, the person's filters gone."""
    page = history(client_for(editor), status="success", draft="no")
    assert f'href="/runs/?status=success&amp;draft=no&amp;batch={batch.pk}"' in page
    filtered = history(client_for(editor), status="success", draft="no", batch=str(batch.pk))
    assert f'href="/runs/?status=success&amp;draft=no&amp;batch={batch.pk}"' in filtered  # not batch= twice


@pytest.mark.parametrize("value", ["999999", "abc", "٣", "9" * 40, "-1"])
def test_an_unknown_batch_id_shows_no_runs_and_says_so_without_a_server_error(client_for, editor, batch, value):
    response = client_for(editor).get(reverse("run_history"), {"batch": value})
    page = response.content.decode()
    assert response.status_code == 200 and "No runs shown: fix the filters." in page
    assert "Batch: That batch is not in any of your workspaces (or does not exist)." in page
    assert 'class="badge batch"' not in page


def test_another_workspaces_batch_reads_as_one_that_does_not_exist(client_for, make_workspace, outsider, batch, editor):
    theirs = make_workspace(owner=outsider, name="Theirs", maxim_id="ws-2")
    their_prompt = theirs.prompts.create(maxim_id="p-2", name="Secret prompt")
    make_version(their_prompt, 1)
    secret = seed(theirs, their_prompt, outsider, cases=1, failing={})
    secret.title = "Secret launch plan"
    secret.save(update_fields=["title"])
    client = client_for(editor)
    mine, unknown = history(client, batch=str(secret.pk)), history(client, batch="987654")
    said = "Batch: That batch is not in any of your workspaces (or does not exist)."
    assert said in mine and said in unknown and "Secret" not in mine and 'class="badge batch"' not in mine
    export = client.get(reverse("run_export_csv"), {"batch": str(secret.pk)})
    assert export.status_code == 400 and b"Secret" not in export.content


def test_the_export_names_each_runs_batch(client_for, editor, batch):
    client = client_for(editor)
    rows = list(csv.DictReader(io.StringIO(body_of(client.get(reverse("run_export_csv"))))))
    assert sorted((r["batch_id"], r["batch"]) for r in rows) == [("", "")] + [(str(batch.pk), LONG)] * 6
    records = json.loads(body_of(client.get(reverse("run_export_json"), {"batch": str(batch.pk)})))
    assert {(r["batch_id"], r["batch"]) for r in records} == {(batch.pk, LONG)} and len(records) == 6


def test_the_batch_page_links_to_its_runs_in_history(client_for, editor, batch):
    page = client_for(editor).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert f'<a href="/runs/?batch={batch.pk}">See these runs in History</a>' in page
    assert BatchComparison.objects.count() == 1


def test_the_home_page_s_recent_runs_name_their_batch_too(client_for, editor, batch):
    html = client_for(editor).get("/").content.decode()
    recent = html[html.index('id="recent-runs"') :]
    assert f'href="/runs/?batch={batch.pk}" title="Batch: {LONG}"' in recent
    # Cut as History cuts it (Django's truncatechars left a space before the "…").
    assert f'aria-label="Batch {LONG}: show only its runs"><bdi>Tone of the spring support…</bdi>' in recent
