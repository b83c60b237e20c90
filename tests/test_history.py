"""Run history page: who sees what, rows, totals, htmx fragment, keyset pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app import runner
from prompts_app.models import Prompt, PromptVersion, Role, Run
from prompts_app.selectors import history
from prompts_app.selectors.history import Cursor, RunFilter
from tests.conftest import NOW, make_run

UTC = dt.timezone.utc


@pytest.fixture
def other_workspace(make_workspace, outsider):
    """A workspace only the outsider belongs to, with a run of its own."""
    workspace = make_workspace(owner=outsider, name="Elsewhere", maxim_id="ws-2")
    prompt = Prompt.objects.create(workspace=workspace, maxim_id="prompt-x", name="Secret prompt")
    version = PromptVersion.objects.create(prompt=prompt, maxim_id="version-x", number=1, model_name="gpt-secret")
    make_run(version, outsider, input_text="their secret input", cost_nano=7_777_777)
    return workspace


def test_anonymous_user_is_sent_to_login(client):
    response = client.get(reverse("run_history"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_member_sees_their_workspace_runs_newest_first(client_for, viewer, owner, version):
    older = make_run(version, owner, created_at=NOW - dt.timedelta(hours=1), input_text="first")
    newer = make_run(version, owner, created_at=NOW, input_text="second")
    response = client_for(viewer).get(reverse("run_history"))
    assert response.status_code == 200
    assert [r.pk for r in response.context["page"].runs] == [newer.pk, older.pk]
    assert reverse("run_detail", args=[newer.pk]) in response.content.decode()


def test_outsider_sees_none_of_another_workspaces_runs(client_for, outsider, owner, version, other_workspace):
    make_run(version, owner, input_text="acme only", cost_nano=5_000)
    response = client_for(outsider).get(reverse("run_history"))
    runs = response.context["page"].runs
    assert {r.workspace_id for r in runs} == {other_workspace.pk}
    assert response.context["totals"].runs == 1 and response.context["totals"].cost_nano == 7_777_777
    assert "acme only" not in response.content.decode() and "Support reply" not in response.content.decode()


def test_member_does_not_see_runs_of_a_workspace_they_are_not_in(client_for, owner, version, other_workspace):
    make_run(version, owner)
    response = client_for(owner).get(reverse("run_history"))
    assert "Secret prompt" not in response.content.decode()
    assert response.context["totals"].runs == 1


def test_filtering_by_a_workspace_you_are_not_in_shows_a_message_and_no_runs(
    client_for, owner, version, other_workspace
):
    make_run(version, owner)
    response = client_for(owner).get(reverse("run_history"), {"workspace": other_workspace.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert "not in any of your workspaces" in body
    assert "page" not in response.context and "Secret prompt" not in body


def test_a_row_shows_status_prompt_version_model_tokens_cost_latency_user(client_for, owner, version):
    make_run(version, owner, prompt_tokens=1200, completion_tokens=34, cost_nano=1_234_567, latency_ms=812.4)
    body = client_for(owner).get(reverse("run_history")).content.decode()
    for text in ("badge success", "Support reply</a> · v1", "gpt-4o", "1,234", "$0.00123", "812 ms", "olivia"):
        assert text in body, text
    # Rows round to 3 digits and need not add up to their total (new-user trial): every digit on hover.
    assert 'title="$0.001234567 exactly">$0.00123<' in body
    assert 'title="$0.001234567 exactly; each row is rounded on its own">$0.00123<' in body


def test_failed_run_shows_no_cost_and_unpriced_success_says_unpriced(client_for, owner, version):
    make_run(version, owner, status="failed", error="Maxim said no")
    make_run(version, owner, cost_nano=None, created_at=NOW - dt.timedelta(minutes=1))
    response = client_for(owner).get(reverse("run_history"))
    body = response.content.decode()
    assert "badge failed" in body and "unpriced" in body
    totals = response.context["totals"]
    assert (totals.runs, totals.unpriced_runs, totals.priced_runs, totals.cost_nano) == (2, 1, 0, 0)


def test_totals_are_exact_integer_sums_with_unpriced_counted_apart(client_for, owner, version):
    costs = [1, 999_999_999, 123_456_789_012, None, 3]
    for i, cost in enumerate(costs):
        make_run(
            version,
            owner,
            cost_nano=cost,
            prompt_tokens=i,
            completion_tokens=1,
            created_at=NOW - dt.timedelta(minutes=i),
        )
    make_run(version, owner, status="pending", created_at=NOW + dt.timedelta(minutes=1))
    totals = client_for(owner).get(reverse("run_history")).context["totals"]
    assert totals.cost_nano == 1 + 999_999_999 + 123_456_789_012 + 3
    assert (totals.runs, totals.priced_runs, totals.unpriced_runs) == (6, 4, 1)
    assert totals.total_tokens == sum(range(5)) + 5


def test_htmx_request_gets_only_the_table_fragment(client_for, owner, version):
    make_run(version, owner)
    response = client_for(owner).get(reverse("run_history"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="history-table"')
    assert "<html" not in body and 'hx-swap-oob="true"' in body


def test_the_filter_form_pushes_the_url_and_every_page_link_has_a_real_href(client_for, owner, version):
    for i in range(60):
        make_run(version, owner, created_at=NOW - dt.timedelta(seconds=i))
    body = client_for(owner).get(reverse("run_history"), {"model": "gpt-4o"}).content.decode()
    assert 'hx-push-url="true"' in body and 'method="get"' in body
    older = re.search(r'href="(/runs/\?model=gpt-4o&amp;before=[0-9-]+)"', body)
    assert older, "older link keeps the filter and carries a cursor"


def test_page_queries_stay_few(client_for, owner, version, editor):
    for i in range(80):
        make_run(version, owner if i % 2 else editor, created_at=NOW - dt.timedelta(seconds=i))
    client = client_for(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("run_history"), {"status": "success", "model": "gpt-4o"})
    assert response.status_code == 200 and len(response.context["page"].runs) == 50
    assert len(queries) <= 10, [q["sql"] for q in queries]


def test_keyset_pages_cover_every_run_once_in_order_even_with_equal_times(owner, version, workspace):
    runs = [make_run(version, owner, created_at=NOW - dt.timedelta(seconds=i // 3)) for i in range(23)]
    expected = [r.pk for r in sorted(runs, key=lambda r: (r.created_at, r.pk), reverse=True)]
    f = RunFilter(workspace_ids=[workspace.pk])
    seen, cursor, pages = [], None, []
    while True:
        page = history.page(f, older_than=cursor, size=5)
        pages.append(page)
        seen += [r.pk for r in page.runs]
        if page.older is None:
            break
        cursor = page.older
    assert seen == expected and len(pages) == 5
    # and back again from the last page with the "newer" links
    back, page = [r.pk for r in pages[-1].runs], pages[-1]
    while page.newer is not None:
        page = history.page(f, newer_than=page.newer, size=5)
        back = [r.pk for r in page.runs] + back
    assert back == expected and page.is_first


def test_older_link_in_the_page_leads_to_the_next_runs(client_for, owner, version):
    runs = [make_run(version, owner, created_at=NOW - dt.timedelta(seconds=i)) for i in range(55)]
    client = client_for(owner)
    first = client.get(reverse("run_history"))
    cursor = first.context["page"].older.encode()
    second = client.get(reverse("run_history"), {"before": cursor})
    assert [r.pk for r in second.context["page"].runs] == [r.pk for r in runs[50:]]
    assert second.context["page"].older is None and second.context["page"].newer is not None


def test_a_broken_page_link_shows_a_message_not_an_error(client_for, owner, version):
    make_run(version, owner)
    response = client_for(owner).get(reverse("run_history"), {"before": "not-a-cursor"})
    assert response.status_code == 200
    assert "page link is broken" in response.content.decode()


def test_cursor_round_trips_to_the_microsecond():
    cursor = Cursor(dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), 42)
    assert Cursor.decode(cursor.encode()) == cursor


def test_viewer_role_is_enough_to_see_history(client_for, make_user, workspace, version, owner):
    reader = make_user("reader")
    workspace.memberships.create(user=reader, role=Role.VIEWER)
    make_run(version, owner)
    assert len(client_for(reader).get(reverse("run_history")).context["page"].runs) == 1


def test_a_user_with_no_workspaces_sees_an_empty_history_costs_and_export(client_for, outsider, owner, version):
    make_run(version, owner)
    client = client_for(outsider)
    response = client.get(reverse("run_history"))
    assert response.context["page"].runs == [] and response.context["totals"].runs == 0
    assert "No runs match" in response.content.decode()
    assert client.get(reverse("cost_review")).context["review"].total.runs == 0
    assert b"".join(client.get(reverse("run_export_json")).streaming_content).strip() == b"[\n]"


def test_a_newer_link_with_nothing_newer_any_more_shows_the_newest_runs(owner, version, workspace):
    run = make_run(version, owner)
    page = history.page(RunFilter([workspace.pk]), newer_than=Cursor(NOW + dt.timedelta(days=1), 1))
    assert [r.pk for r in page.runs] == [run.pk] and page.is_first


def test_a_run_left_pending_by_a_restart_shows_as_interrupted_in_history(client_for, owner, version):
    now = dt.datetime.now(dt.timezone.utc)
    stale = make_run(version, owner, status="pending", created_at=now - dt.timedelta(hours=1))
    Run.objects.filter(pk=stale.pk).update(started_at=stale.created_at)  # it was sent, then the process died
    fresh = make_run(version, owner, status="pending", created_at=now)  # may still be with Maxim
    page = client_for(owner).get("/runs/").content.decode()
    assert 'class="badge interrupted"' in page and 'class="badge pending"' in page
    # The page wrote nothing (a GET); the runner's sweep settles the stale run only.
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.PENDING}
    runner.sweep()
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Run.Status.INTERRUPTED
    assert fresh.status == Run.Status.PENDING


def test_history_table_is_named_and_long_prompt_names_are_cut_with_the_full_name_a_click_away(
    client_for, owner, workspace
):
    name = "N" * 300
    prompt = Prompt.objects.create(workspace=workspace, maxim_id="p-long", name=name)
    long_version = PromptVersion.objects.create(prompt=prompt, maxim_id="v-long", number=1, model_name="gpt-4o")
    make_run(long_version, owner, status="failed", prompt_tokens=0, completion_tokens=0, error="HTTP 429")
    body = client_for(owner).get(reverse("run_history")).content.decode()
    assert '<table class="data history" aria-label="Runs matching the filters">' in body
    assert f'<a class="clip" href="{reverse("prompt_detail", args=[prompt.pk])}" title="{name}">' in body
    row = body[body.index("<tbody>") : body.index("</tbody>")]
    assert "No usage reported" in row and "0 in, 0 out" not in row  # a failed run with no usage: "—"


def test_filter_errors_are_announced(client_for, owner, workspace):
    body = client_for(owner).get(reverse("run_history"), {"date_from": "nope"}).content.decode()
    assert 'class="alert error" role="alert"' in body and 'id="err-date_from" class="field-errors" role="alert"' in body
    costs = client_for(owner).get(reverse("cost_review"), {"period": "custom", "date_from": "nope"}).content.decode()
    assert '<div class="field-errors" role="alert">' in costs


def test_totals_of_failed_runs_only_show_no_cost_rather_than_zero_dollars(client_for, owner, version):
    make_run(version, owner, status="failed", error="Maxim had a server error (500)")
    body = client_for(owner).get(reverse("run_history_totals"), {"status": "failed"}).content.decode()
    assert "$0.00" not in body and "No run here has a price" in body
    # The table's footer says the same as the totals above it.
    page = client_for(owner).get(reverse("run_history"), {"status": "failed"}).content.decode()
    footer = page.split("<tfoot>")[1].split("</tfoot>")[0]
    assert "Totals for this filter" in footer and "$0.00" not in footer and "—" in footer


@pytest.mark.parametrize("value", ["", "2", "9", None])
def test_the_quick_select_writes_the_same_markup_as_djangos(value):
    from django import forms

    from prompts_app.forms.history import QuickSelect

    choices = [("", "All prompts"), (1, "Support <bot>"), (2, 'Say "hi" & go')]
    attrs = {"id": "id_prompt", "aria-invalid": "true", "disabled": False, "required": True}
    assert QuickSelect(choices=choices).render("prompt", value, attrs) == forms.Select(choices=choices).render(
        "prompt", value, attrs
    )


@pytest.mark.parametrize(
    ("latency", "shown"), [(0.5, "1"), (1234.5, "1,235"), (2.4999, "2"), (1_000_000.0, "1,000,000")]
)
def test_history_rows_show_latency_as_floatformat_and_intcomma_did(latency, shown):
    from django.contrib.humanize.templatetags.humanize import intcomma
    from django.template.defaultfilters import floatformat

    from prompts_app.templatetags.history import whole_ms

    assert whole_ms(latency) == shown == intcomma(floatformat(latency, 0))


def test_rows_written_in_python_escape_names_as_the_template_did(client_for, owner, version):
    Prompt.objects.filter(pk=version.prompt_id).update(name="<b>\"Bold\" & 'co'</b>")
    make_run(version, owner, model_name="<i>model</i>", cost_nano=None, latency_ms=None)
    body = client_for(owner).get(reverse("run_history")).content.decode()
    assert "<b>" not in body and "<i>model" not in body
    assert 'title="&lt;b&gt;&quot;Bold&quot; &amp; &#x27;co&#x27;&lt;/b&gt;">&lt;b&gt;&quot;Bold&quot;' in body
    assert '<span class="clip" title="&lt;i&gt;model&lt;/i&gt;">&lt;i&gt;model&lt;/i&gt;</span>' in body
    assert '<td class="num"><span class="muted">—</span></td>' in body  # no latency: a dash, not "None"


def test_one_run_is_one_run_not_1_runs(client_for, owner, version):
    make_run(version, owner, status="failed", error="boom")
    page = client_for(owner).get(reverse("run_history"), {"status": "failed"}).content.decode()
    assert "1</strong> run ·" in page and "1 runs" not in page and "Totals for this filter: 1 run" in page
