"""Cost review: period, workspace filter, chart, and the per-prompt/version/model tables."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app.models import Prompt, PromptVersion
from tests.conftest import make_run

UTC = dt.timezone.utc


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def at(days_ago: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(today() - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=UTC)


@pytest.fixture
def spend(version, owner, editor):
    v2 = PromptVersion.objects.create(prompt=version.prompt, maxim_id="v-2", number=2, model_name="gpt-4o-mini")
    runs = [
        make_run(version, owner, created_at=at(0), cost_nano=1_000_000_000, prompt_tokens=100, completion_tokens=0),
        make_run(version, owner, created_at=at(0, 1), cost_nano=500_000_000, prompt_tokens=50, completion_tokens=0),
        make_run(v2, editor, created_at=at(3), cost_nano=3, prompt_tokens=7, completion_tokens=3),
        make_run(v2, editor, created_at=at(3, 2), cost_nano=None, prompt_tokens=1, completion_tokens=1),
        make_run(v2, editor, created_at=at(4), status="failed", prompt_tokens=0, completion_tokens=0),
        make_run(version, owner, created_at=at(40), cost_nano=9_000_000_000),  # outside 30 days
        make_run(version, owner, created_at=at(1), status="pending"),  # counted live
    ]
    return {"v2": v2, "runs": runs}


def test_default_is_the_last_30_days_with_exact_totals(client_for, owner, spend):
    response = client_for(owner).get(reverse("cost_review"))
    assert response.status_code == 200
    review = response.context["review"]
    assert (review.start, review.end) == (today() - dt.timedelta(days=29), today())
    assert len(review.days) == 30
    total = review.total
    assert (total.runs, total.cost_nano, total.unpriced_runs, total.priced_runs) == (6, 1_500_000_003, 1, 3)
    assert total.total_tokens == 100 + 50 + 10 + 2
    body = response.content.decode()
    assert "$1.50" in body and 'role="img"' in body


def test_the_chart_has_a_bar_per_day_and_the_title_gives_the_days_figures(client_for, owner, spend):
    body = client_for(owner).get(reverse("cost_review"), {"period": "7"}).content.decode()
    assert body.count('<g class="day"') == 7
    assert f"<title>{today().isoformat()}: $1.50 · 150 tokens · 2 runs</title>" in body
    assert (
        f"<title>{(today() - dt.timedelta(days=3)).isoformat()}: $0.000000003 · 12 tokens · 2 runs · 1 unpriced</title>"
        in body
    )


def test_presets_and_a_custom_period(client_for, owner, spend):
    client = client_for(owner)
    assert client.get(reverse("cost_review"), {"period": "90"}).context["review"].total.cost_nano == 10_500_000_003
    start = (today() - dt.timedelta(days=41)).isoformat()
    end = (today() - dt.timedelta(days=39)).isoformat()
    review = client.get(reverse("cost_review"), {"period": "custom", "date_from": start, "date_to": end}).context[
        "review"
    ]
    assert len(review.days) == 3 and review.total.cost_nano == 9_000_000_000


def test_tables_per_prompt_version_and_model_with_cost_per_1000_priced_runs(client_for, owner, spend, version):
    response = client_for(owner).get(reverse("cost_review"))
    review = response.context["review"]
    by_version = dict(review.by_version)
    assert by_version[version.pk].cost_nano == 1_500_000_000 and by_version[version.pk].runs == 3
    # v1: 2 priced runs costing $1.50 -> $750 per 1,000; the pending run is not priced and not counted in it
    assert by_version[version.pk].cost_per_1000_runs_nano == 750_000_000_000
    # v2: one priced run of 3 nano -> 3,000 nano per 1,000; the unpriced and failed runs are left out
    assert by_version[spend["v2"].pk].cost_per_1000_runs_nano == 3_000
    assert dict(review.by_model)[("openai", "gpt-4o-mini")].unpriced_runs == 1
    assert [t.runs for _, t in review.by_prompt] == [6]
    body = response.content.decode()
    assert "Support reply v2" in body and "openai / gpt-4o-mini" in body and "$750.00" in body
    assert "priced runs only" in body


def test_workspace_filter_and_outsider_sees_nothing(client_for, owner, outsider, spend, make_workspace, workspace):
    mine = make_workspace(owner=outsider, name="Mine", maxim_id="ws-m")
    prompt = Prompt.objects.create(workspace=mine, maxim_id="p-m", name="Mine prompt")
    make_run(
        PromptVersion.objects.create(prompt=prompt, maxim_id="v-m", number=1, model_name="m"),
        outsider,
        created_at=at(0),
        cost_nano=77,
    )
    review = client_for(outsider).get(reverse("cost_review")).context["review"]
    assert (review.total.runs, review.total.cost_nano) == (1, 77)
    response = client_for(outsider).get(reverse("cost_review"), {"workspace": workspace.pk})
    assert "review" not in response.context and "not in any of your workspaces" in response.content.decode()
    assert client_for(owner).get(reverse("cost_review"), {"workspace": workspace.pk}).context["review"].total.runs == 6


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "custom", "date_from": "bad"}, "Enter a valid date"),
        ({"period": "custom"}, "Pick the first day"),
        ({"period": "custom", "date_from": "2026-02-01", "date_to": "2026-01-01"}, "is before"),
        ({"period": "custom", "date_from": "2020-01-01", "date_to": "2026-01-01"}, "at most 366 days"),
        ({"period": "365"}, "Select a valid choice"),
    ],
)
def test_bad_periods_get_a_message_and_keep_the_input(client_for, owner, params, message):
    response = client_for(owner).get(reverse("cost_review"), params)
    assert response.status_code == 200 and message in response.content.decode()
    assert "review" not in response.context


def test_cost_review_queries_stay_few(client_for, owner, spend):
    client = client_for(owner)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("cost_review"))
    assert len(queries) <= 10, [q["sql"] for q in queries]


def test_anonymous_user_is_sent_to_login(client):
    assert client.get(reverse("cost_review")).status_code == 302


def test_runs_of_an_unsaved_draft_have_their_own_row_and_totals_still_add_up(client_for, owner, version, workspace):
    make_run(version, owner, created_at=at(0), cost_nano=100)  # the one real run of v1
    for hour in range(3):
        make_run(version, owner, created_at=at(0, hour), cost_nano=10, is_draft=True)
    make_run(version, owner, created_at=at(1), cost_nano=1, is_draft=True, record=False)  # not rolled up yet: live
    response = client_for(owner).get(reverse("cost_review"))
    review = response.context["review"]
    assert [(pk, t.runs, t.cost_nano) for pk, t in review.by_version] == [(version.pk, 1, 100)]
    assert [(pk, t.runs, t.cost_nano) for pk, t in review.by_draft] == [(version.prompt_id, 4, 31)]
    assert review.total.runs == 5 and review.total.cost_nano == 131
    body = response.content.decode()
    # A draft is no version (one begun blank is stored against the newest): named after its prompt.
    assert "\u2068Support reply\u2069 · unsaved drafts" in body and "v1 · draft" not in body
    assert f"prompt={version.prompt_id}&amp;draft=yes" in body  # the row links to exactly its runs
    drafts = client_for(owner).get(reverse("run_history"), {"prompt": version.prompt_id, "draft": "yes"})
    assert drafts.context["totals"].runs == 4 and "Support reply</a> · unsaved draft" in drafts.content.decode()
    history = client_for(owner).get(reverse("run_history"), {"version": version.pk, "draft": "yes"})
    assert history.context["totals"].runs == 4 and len(history.context["page"].runs) == 4
    saved = client_for(owner).get(reverse("run_history"), {"version": version.pk, "draft": "no"})
    assert saved.context["totals"].runs == 1
    page = client_for(owner).get(reverse("run_detail", args=[history.context["page"].runs[0].pk])).content.decode()
    assert (
        "ran an unsaved draft of Support reply" in page
        and f'href="{reverse("version_detail", args=[version.pk])}"' not in page
    )


def test_a_row_of_failed_runs_only_shows_no_cost_rather_than_zero_dollars(client_for, owner, version):
    make_run(version, owner, created_at=at(0), cost_nano=100)
    make_run(
        version, owner, created_at=at(0), status="failed", model_name="fail-500", prompt_tokens=0, completion_tokens=0
    )
    body = client_for(owner).get(reverse("cost_review")).content.decode()
    row = body[body.index("fail-500</a>") :]
    row = row[: row.index("</tr>")]
    assert "$0.00" not in row and "No run here has a price" in row
