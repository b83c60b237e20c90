"""Rollups stay equal to a direct SUM over the runs, however runs finish."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db.models import Count, Q, Sum

from prompts_app.models import Prompt, PromptVersion, Run, RunRollup
from prompts_app.selectors import costs, history
from prompts_app.selectors.history import RunFilter
from prompts_app.services import rollups
from prompts_app.services.runs import mark_interrupted_runs, run_version
from tests.maxim_spec import validate_request
from tests.conftest import make_run

UTC = dt.timezone.utc


def direct(f: RunFilter) -> dict:
    """The slow, obviously-right answer: aggregate the runs themselves."""
    runs = history.filter_runs(f)
    row = runs.aggregate(
        runs=Count("id"),
        tokens=Sum("total_tokens", default=0),
        cost=Sum("cost_nano", default=0),
        priced=Count("id", filter=Q(cost_nano__isnull=False)),
        unpriced=Count("id", filter=Q(cost_nano__isnull=True, status="success")),
    )
    return row


def summed(f: RunFilter) -> dict:
    t = history.totals(f)
    return {
        "runs": t.runs,
        "tokens": t.total_tokens,
        "cost": t.cost_nano,
        "priced": t.priced_runs,
        "unpriced": t.unpriced_runs,
    }


@pytest.fixture
def versions(workspace, make_workspace, owner, version):
    second = make_workspace(owner=owner, name="Beta", maxim_id="ws-b")
    prompt_b = Prompt.objects.create(workspace=second, maxim_id="p-b", name="Other")
    return [
        version,
        PromptVersion.objects.create(prompt=version.prompt, maxim_id="v-2", number=2, model_name="gpt-4o-mini"),
        PromptVersion.objects.create(
            prompt=prompt_b, maxim_id="v-b", number=1, provider="anthropic", model_name="claude"
        ),
    ]


def random_runs(rng: random.Random, versions, users, n: int) -> list[Run]:
    start = dt.datetime(2025, 12, 20, tzinfo=UTC)
    runs = []
    for _ in range(n):
        status = rng.choice(["success"] * 6 + ["failed", "pending", "interrupted"])
        runs.append(
            make_run(
                rng.choice(versions),
                rng.choice(users),
                status=status,
                created_at=start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 80)),
                model_name=rng.choice([None, None, "override-model"]) or None,
                prompt_tokens=rng.randrange(0, 5000),
                completion_tokens=rng.randrange(0, 900),
                cost_nano=rng.choice([None, rng.randrange(0, 10**12)]),
                latency_ms=rng.choice([None, rng.uniform(5, 5000)]),
                record=rng.random() < 0.85,  # some runs finish without record(): the live sum covers them
                is_draft=rng.random() < 0.2,
            )
        )
    return runs


def random_filter(rng: random.Random, ws_ids, versions, users) -> RunFilter:
    day = dt.date(2025, 12, 20) + dt.timedelta(days=rng.randrange(0, 80))
    return RunFilter(
        workspace_ids=rng.choice([ws_ids, [rng.choice(ws_ids)]]),
        version_id=rng.choice([None, None, rng.choice(versions).pk]),
        model=rng.choice(["", "", "gpt-4o", "override-model"]),
        provider=rng.choice(["", "", "openai", "anthropic"]),
        status=rng.choice(["", "", "success", "failed", "pending", "interrupted"]),
        user_id=rng.choice([None, None, rng.choice(users).pk]),
        date_from=rng.choice([None, day]),
        date_to=rng.choice([None, day + dt.timedelta(days=rng.randrange(0, 70))]),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_totals_equal_a_direct_sum_for_random_runs_and_filters(seed, versions, owner, editor, viewer):
    rng = random.Random(seed)
    users = [owner, editor, viewer]
    random_runs(rng, versions, users, 150)
    ws_ids = sorted({v.prompt.workspace_id for v in versions})
    for _ in range(60):
        f = random_filter(rng, ws_ids, versions, users)
        assert summed(f) == direct(f), f


def test_interrupted_runs_move_into_the_rollups_and_totals_stay_exact(versions, owner, workspace):
    old = dt.datetime.now(UTC) - dt.timedelta(hours=2)
    for i in range(5):
        run = make_run(versions[0], owner, status="pending", created_at=old + dt.timedelta(seconds=i))
        Run.objects.filter(pk=run.pk).update(started_at=run.created_at)  # sent, then its process died
    make_run(versions[1], owner, cost_nano=42, created_at=old)
    f = RunFilter(workspace_ids=[workspace.pk])
    assert summed(f) == direct(f)
    assert mark_interrupted_runs() == 5
    assert not Run.objects.filter(rolled_up=False).exists()
    assert RunRollup.objects.filter(grain="day", status="interrupted").get().runs == 5
    assert summed(f) == direct(f) and summed(RunFilter([workspace.pk], status="interrupted"))["runs"] == 5


def test_record_counts_a_run_once_however_often_it_is_called(version, owner, workspace):
    run = make_run(version, owner, cost_nano=5, record=False)
    assert rollups.record(run) is True
    assert rollups.record(run) is False
    assert rollups.catch_up() == 0
    assert RunRollup.objects.get(grain="day").runs == 1 and RunRollup.objects.get(grain="month").cost_nano == 5


def test_a_pending_run_is_not_rolled_up_but_is_counted_live(version, owner, workspace):
    run = make_run(version, owner, status="pending")
    assert rollups.record(run) is False and not RunRollup.objects.exists()
    assert summed(RunFilter([workspace.pk]))["runs"] == 1


def test_rebuild_gives_the_same_rows_as_recording_run_by_run(versions, owner, editor):
    random_runs(random.Random(7), versions, [owner, editor], 120)
    rollups.catch_up()
    fields = (
        "grain",
        "day",
        "workspace_id",
        "version_id",
        "user_id",
        "provider",
        "model_name",
        "status",
        "is_draft",
        *rollups.SUM_FIELDS,
    )

    def snapshot() -> list:
        return sorted(
            (
                tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in RunRollup.objects.values_list(*fields)
            ),
            key=repr,
        )

    incremental = snapshot()
    rollups.rebuild()
    assert snapshot() == incremental


@pytest.fixture
def maxim_version(fake_maxim, workspace, prompt, version):
    """The fixture workspace pointed at the fake Maxim, with the version known there."""
    ws = fake_maxim.add_workspace("Acme")
    remote_prompt = fake_maxim.add_prompt(ws["id"], "Support reply")
    remote = fake_maxim.add_version(
        {
            "promptId": remote_prompt["id"],
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "messages": version.messages,
        }
    )
    workspace.base_url, workspace.maxim_id = fake_maxim.base_url, ws["id"]
    workspace.save()
    prompt.maxim_id = remote_prompt["id"]
    prompt.save()
    version.maxim_id = remote["id"]
    version.save()
    return version


def test_runs_that_succeed_or_fail_through_maxim_are_rolled_up_as_they_finish(
    maxim_version, fake_maxim, owner, workspace
):
    inputs = {"variables": {"company": "Acme", "name": "Ann"}, "turns": [{"role": "user", "content": "Where is it?"}]}
    ok = run_version(version=maxim_version, inputs=inputs, user=owner)
    failed = run_version(version=maxim_version, inputs={**inputs, "overrides": {"model_name": "fail-500"}}, user=owner)
    assert (ok.status, failed.status) == ("success", "failed")
    sent = fake_maxim.requests_to("/v1/prompts/run")
    assert len(sent) == 2
    for request in sent:
        validate_request(request.method, request.path, request.body, request.query)
    assert not Run.objects.filter(rolled_up=False).exists()
    by_status = {r.status: r for r in RunRollup.objects.filter(grain="day")}
    assert by_status["success"].total_tokens == ok.total_tokens > 0
    assert by_status["failed"].runs == 1 and by_status["failed"].model_name == "fail-500"
    f = RunFilter([workspace.pk])
    assert summed(f) == direct(f)


def test_an_answer_that_arrives_after_the_run_was_marked_interrupted_replaces_it_in_the_totals(
    maxim_version, fake_maxim, owner, workspace
):
    from prompts_app.services.runs import execute_run, mark_started, start_run

    inputs = {"variables": {"company": "Acme", "name": "Ann"}, "turns": [{"role": "user", "content": "Late?"}]}
    run, _ = start_run(version=maxim_version, inputs=inputs, user=owner)
    assert mark_started(run)  # on its way to Maxim when the process restarts
    assert mark_interrupted_runs(all_pending=True) == 1  # a restart while Maxim was still answering
    assert RunRollup.objects.get(grain="day").status == "interrupted"

    execute_run(run)  # the answer arrives after all

    run.refresh_from_db()
    assert run.status == "success" and run.rolled_up
    rows = RunRollup.objects.filter(grain="day")
    assert {r.status: r.runs for r in rows} == {"interrupted": 0, "success": 1}
    f = RunFilter([workspace.pk])
    assert summed(f) == direct(f)


@pytest.mark.parametrize("counted_meanwhile", [0, 1])
def test_a_group_of_answers_stored_at_once_counts_each_run_once(version, owner, workspace, counted_meanwhile):
    from prompts_app.services.runs import store_finished

    group = [make_run(version, owner, status="pending") for _ in range(3)]
    if counted_meanwhile:  # a sweep settled one as interrupted and counted it while Maxim was answering
        Run.objects.filter(pk=group[0].pk).update(status="interrupted")
        assert rollups.catch_up() == 1 and RunRollup.objects.get(grain="day").status == "interrupted"
    for n, run in enumerate(group):
        run.status, run.total_tokens, run.cost_nano = "success", 10 + n, 100 + n

    store_finished(group)

    assert set(Run.objects.values_list("status", "rolled_up")) == {("success", True)}
    f = RunFilter([workspace.pk])
    assert summed(f) == direct(f) == {"runs": 3, "tokens": 33, "cost": 303, "priced": 3, "unpriced": 0}
    day = {row.status: row.runs for row in RunRollup.objects.filter(grain="day")}
    assert day == ({"success": 3, "interrupted": 0} if counted_meanwhile else {"success": 3})
    assert not rollups.drift()


def test_rollup_totals_are_integers_of_nano_usd_on_every_database(version, owner, workspace):
    # Summed in SQL written out (selectors/costs.rollup_totals): PostgreSQL's SUM of integers is a
    # numeric (a Decimal in Python), turned back into the column's own type as the ORM would.
    make_run(version, owner, cost_nano=1_500_000_001, prompt_tokens=3, completion_tokens=4, latency_ms=12.5)
    make_run(version, owner, cost_nano=2, prompt_tokens=1, completion_tokens=1, latency_ms=0.25)
    sums = costs.rollup_totals(Q(workspace_id__in=[workspace.pk], grain=RunRollup.Grain.MONTH))
    assert sums["cost_nano"] == 1_500_000_003 and type(sums["cost_nano"]) is int
    assert sums["runs"] == 2 and type(sums["runs"]) is int and type(sums["total_tokens"]) is int
    assert sums["latency_sum"] == 12.75 and type(sums["latency_sum"]) is float
    assert costs.rollup_totals(Q(workspace_id__in=[])) == dict.fromkeys(rollups.SUM_FIELDS)  # nothing matches
