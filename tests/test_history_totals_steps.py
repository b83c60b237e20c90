"""A text search's totals in steps: each answer exact for the runs it covered, the last one
equal to a direct sum over every matching run; a step's sums never reach another user or search."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.db import connection
from django.urls import reverse

from prompts_app.models import Membership, Prompt, PromptVersion, Role, Run
from prompts_app.selectors import history
from tests.conftest import NOW, make_run

NEXT_STEP = re.compile(r'id="history-totals" class="totals" hx-get="([^"]*)"')
NEXT_LINK = re.compile(r'<a href="([^"]*so_far=[^"]*)">go on adding up</a>')


@pytest.fixture
def common_word(workspace, make_workspace, owner, editor, outsider, version):
    """Runs saying "order" of every kind (priced, unpriced, failed, pending, drafts, a named prompt's),
    runs that do not, and an outsider's workspace with "order" runs of its own."""
    named = Prompt.objects.create(workspace=workspace, maxim_id="p-orders", name="Order desk")
    named_version = PromptVersion.objects.create(prompt=named, maxim_id="v-orders", number=1, model_name="gpt-4o")
    theirs = make_workspace(owner=outsider, name="Elsewhere", maxim_id="ws-x", members=[(editor, Role.VIEWER)])
    their_version = PromptVersion.objects.create(
        prompt=Prompt.objects.create(workspace=theirs, maxim_id="p-x", name="Theirs"), maxim_id="v-x", number=1
    )
    for i in range(14):
        kind = ("success", "failed", "pending", "interrupted")[i % 4]
        make_run(
            version,
            owner if i % 3 else editor,
            status=kind,
            created_at=NOW - dt.timedelta(hours=i),
            input_text=f"where is my order {i}" if i % 5 else f"ordering number {i}",
            cost_nano=None if i % 7 == 0 else 1_000_000_007 * (i + 1),
            prompt_tokens=100 + i,
            latency_ms=10.5 * i,
            is_draft=i % 6 == 0,
        )
        make_run(version, owner, input_text=f"a refund please {i}", cost_nano=13)
    make_run(named_version, owner, input_text="no matching word here", cost_nano=None)  # in by its prompt's name
    make_run(their_version, outsider, input_text="my order", cost_nano=999_999)
    return {"workspace": workspace}


def direct_sums(runs) -> dict:
    runs = list(runs)
    return {
        "runs": len(runs),
        "total_tokens": sum(r.total_tokens for r in runs),
        "prompt_tokens": sum(r.prompt_tokens for r in runs),
        "cost_nano": sum(r.cost_nano for r in runs if r.cost_nano is not None),
        "priced_runs": sum(1 for r in runs if r.cost_nano is not None),
        "unpriced_runs": sum(1 for r in runs if r.cost_nano is None and r.status == Run.Status.SUCCESS),
        "latency_runs": sum(1 for r in runs if r.latency_ms is not None),
        "latency_sum": pytest.approx(sum(r.latency_ms for r in runs if r.latency_ms is not None)),
    }


def figures(totals) -> dict:
    return {name: getattr(totals, name) for name in direct_sums([])}


def follow_steps(client, params: dict) -> tuple[list, list[str]]:
    """Ask for the totals, then each next step the answer links to; the totals of each answer.
    (The page, not the htmx fragment, whose partial render the test client keeps no context of;
    the fragment asks for the same address: test_htmx_asks_for_the_next_step_at_once.)"""
    response = client.get(reverse("run_history_totals"), params)
    seen, bodies = [], []
    while True:
        assert response.status_code == 200
        body = response.content.decode()
        seen.append(response.context["totals"])
        bodies.append(body)
        found = NEXT_LINK.search(body)
        if not found:
            return seen, bodies
        assert len(seen) < 100
        response = client.get(html.unescape(found[1]))


def test_htmx_asks_for_the_next_step_at_once(client_for, owner, common_word, small_steps):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL sums a text search in one go")
    client = client_for(owner)
    fragment = client.get(reverse("run_history_totals"), {"q": "order"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<p id="history-totals"') and 'hx-trigger="load"' in fragment
    next_step = html.unescape(NEXT_STEP.search(fragment)[1])
    assert next_step == html.unescape(NEXT_LINK.search(fragment)[1]) and "q=order&so_far=" in next_step
    following = client.get(next_step, HTTP_HX_REQUEST="true")
    assert following.status_code == 200 and 'id="history-totals"' in following.content.decode()


@pytest.fixture
def small_steps(monkeypatch):
    """Every step sums one slice of three run ids (a common word at 1M runs, in miniature)."""
    monkeypatch.setattr(history, "TOTALS_BUDGET", 0)
    monkeypatch.setattr(history, "FIRST_SPAN", 3)


def test_a_text_searchs_totals_in_steps_end_equal_to_a_direct_sum_over_the_matching_runs(
    client_for, owner, common_word, small_steps
):
    seen, bodies = follow_steps(client_for(owner), {"q": "order"})
    matching = Run.objects.filter(workspace=common_word["workspace"]).exclude(input_text__startswith="a refund")
    assert figures(seen[-1]) == direct_sums(matching)
    assert "for this filter" in bodies[-1] and "So far" not in bodies[-1] and "<html" in bodies[-1]
    if connection.vendor == "sqlite":  # PostgreSQL's substring match sums in one go
        assert len(seen) > 3
        assert "So far, newest runs first" in bodies[0] and "go on adding up" in bodies[0]
        runs_so_far = [t.runs for t in seen]
        assert runs_so_far == sorted(runs_so_far) and runs_so_far[0] < runs_so_far[-1]


def test_each_step_is_exact_for_the_newest_runs_it_covered(client_for, owner, version, common_word, small_steps):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL sums a text search in one go")
    seen, _ = follow_steps(client_for(owner), {"q": "order", "prompt": version.prompt_id})
    last_id = Run.objects.order_by("-id").first().pk
    text_runs = Run.objects.filter(workspace=common_word["workspace"], input_text__contains="order")
    for n, totals in enumerate(seen[:-1], start=1):
        covered = text_runs.filter(pk__gte=last_id + 1 - 3 * n)  # one slice of three ids per step
        assert figures(totals) == direct_sums(covered), n


def test_the_totals_in_one_go_equal_the_steps(owner, common_word, small_steps):
    run_filter = history.RunFilter([common_word["workspace"].pk], q="order number")
    progress = history.totals_step(run_filter, None, budget=0)
    while progress.below:
        progress = history.totals_step(run_filter, progress, budget=0)
    assert figures(progress.totals) == figures(history.totals(run_filter))


def test_another_users_or_another_searchs_step_starts_the_totals_again(
    client_for, owner, editor, outsider, common_word, small_steps
):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL sums a text search in one go")
    first = client_for(owner).get(reverse("run_history_totals"), {"q": "order"})
    so_far = first.context["so_far"]
    assert so_far and first.context["totals"].runs > 0
    for user, q in ((owner, "refund"), (editor, "order"), (outsider, "order")):
        client = client_for(user)
        replayed = client.get(reverse("run_history_totals"), {"q": q, "so_far": so_far})
        fresh = client.get(reverse("run_history_totals"), {"q": q})
        assert figures(replayed.context["totals"]) == figures(fresh.context["totals"]), (user, q)
    whole, _ = follow_steps(client_for(outsider), {"q": "order"})
    assert whole[-1].runs == 1 and whole[-1].cost_nano == 999_999  # their one run, nothing of ours


def test_sums_carried_from_before_a_removal_from_a_workspace_are_dropped(client_for, editor, common_word, small_steps):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL sums a text search in one go")
    client = client_for(editor)
    first = client.get(reverse("run_history_totals"), {"q": "order"})
    assert first.context["so_far"] and first.context["totals"].cost_nano >= 999_999  # the newest: theirs
    Membership.objects.filter(user=editor, workspace__name="Elsewhere").delete()
    replayed = client.get(reverse("run_history_totals"), {"q": "order", "so_far": first.context["so_far"]})
    fresh = client.get(reverse("run_history_totals"), {"q": "order"})
    assert figures(replayed.context["totals"]) == figures(fresh.context["totals"])


@pytest.mark.parametrize("so_far", ["nonsense", "", "a:b:c", "W10:1tQ:abc"])
def test_a_forged_or_broken_step_starts_the_totals_again(client_for, owner, common_word, small_steps, so_far):
    response = client_for(owner).get(reverse("run_history_totals"), {"q": "order", "so_far": so_far})
    first = client_for(owner).get(reverse("run_history_totals"), {"q": "order"})
    assert response.status_code == 200 and figures(response.context["totals"]) == figures(first.context["totals"])
