"""The home page: the user's workspaces, the last 7 days' totals and the newest runs."""

from __future__ import annotations

import datetime as dt
from tests.conftest import make_run


UTC = dt.timezone.utc


def test_home_sums_the_last_seven_days_and_lists_the_newest_runs(client_for, owner, version):
    now = dt.datetime.now(UTC)
    make_run(version, owner, created_at=now - dt.timedelta(hours=1), cost_nano=250_000_000, prompt_tokens=1000)
    make_run(version, owner, created_at=now - dt.timedelta(days=2), cost_nano=None, prompt_tokens=10)
    make_run(version, owner, created_at=now - dt.timedelta(days=30), cost_nano=999_000_000_000)  # too old to count

    response = client_for(owner).get("/")

    overview = response.context["overview"]
    assert overview["totals"].runs == 2
    assert overview["totals"].cost_nano == 250_000_000 and overview["totals"].unpriced_runs == 1
    assert len(overview["recent"]) == 3
    html = response.content.decode()
    assert "$0.25" in html and "+ 1 unpriced" in html


def test_home_shows_nothing_of_workspaces_the_user_is_not_in(client_for, owner, outsider, version, make_workspace):
    make_run(version, owner)
    make_workspace(owner=outsider, name="Elsewhere", maxim_id="ws-x")
    response = client_for(outsider).get("/")
    assert response.context["overview"]["recent"] == []
    assert 'id="recent-runs"' not in response.content.decode()


def test_home_tables_have_names_and_long_names_are_truncated_with_the_full_name_kept(client_for, owner, version):
    workspace = version.prompt.workspace
    workspace.name = "W" * 200
    workspace.save()
    make_run(version, owner)
    html = client_for(owner).get("/").content.decode()
    assert 'id="workspace-list" aria-label="Your workspaces"' in html
    assert 'aria-labelledby="recent-runs-title"' in html and 'aria-labelledby="overview-title"' in html
    assert f'class="truncate" href="/workspaces/{workspace.pk}/prompts/" title="{"W" * 200}"' in html
    assert html.count('<div class="table-scroll">') == 2  # wide tables scroll in their own box on a phone
