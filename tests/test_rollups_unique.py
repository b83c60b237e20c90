"""One rollup row per key on SQLite and PostgreSQL, upserts under concurrency, and the
rebuild_rollups command that finds and repairs drift (issue 9.6)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, connections, transaction

from prompts_app.models import Run, RunRollup
from prompts_app.services import rollups
from tests.conftest import NOW, make_run

DAY = NOW.date()


def rollup_row(version, **extra) -> RunRollup:
    key = {
        "grain": "vday",
        "day": DAY,
        "workspace": version.prompt.workspace,
        "prompt": version.prompt,
        "version": version,
        "user": None,
        "provider": "openai",
        "model_name": "gpt-4o",
        "status": "",
    }
    return RunRollup(**{**key, **extra})


def test_the_database_refuses_a_second_row_for_a_key_with_no_user(version, workspace):
    rollup_row(version).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        rollup_row(version, runs=1).save()
    rollup_row(version, is_draft=True).save()  # a draft's row is another key


def test_every_run_adds_to_one_row_per_key_with_exact_sums(version, owner, editor, workspace):
    runs = [
        make_run(version, user, created_at=NOW + dt.timedelta(minutes=i), cost_nano=1_000 + i)
        for i, user in enumerate([owner, editor, owner, None, None])
    ]
    vday = RunRollup.objects.get(grain="vday")
    assert (vday.runs, vday.cost_nano, vday.user_id) == (5, sum(r.cost_nano for r in runs), None)
    by_user = {r.user_id: r.runs for r in RunRollup.objects.filter(grain="day")}
    assert by_user == {owner.pk: 2, editor.pk: 1, None: 2}  # runs of a deleted user share one row too
    assert RunRollup.objects.filter(grain="month").count() == 3
    assert rollups.drift() == []


def test_taking_a_run_back_subtracts_from_its_rows(version, owner, workspace):
    run = make_run(version, owner, cost_nano=70)
    make_run(version, owner, cost_nano=30)
    with transaction.atomic():
        rollups.retract(Run.objects.get(pk=run.pk))
    assert RunRollup.objects.get(grain="vday").cost_nano == 30
    assert RunRollup.objects.filter(grain="day").get().runs == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_runs_of_a_version_on_a_day_leave_one_row(version, make_user, workspace):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: the race only exists on PostgreSQL")
    writers = 8
    # Different people: their per-user rows differ, so only the version's day row ("vday",
    # user NULL) is shared, and nothing else makes the writers wait for one another.
    runs = [
        make_run(version, make_user(f"person{i}"), created_at=NOW + dt.timedelta(seconds=i), cost_nano=10, record=False)
        for i in range(writers)
    ]
    together = threading.Barrier(writers)
    failures = []

    def finish(run: Run) -> None:
        try:
            with transaction.atomic():
                together.wait(timeout=10)  # every writer finds no row yet, then all insert
                rollups.record(run)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finish, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    rows = RunRollup.objects.filter(grain="vday")
    assert [(r.runs, r.cost_nano) for r in rows] == [(writers, 10 * writers)]
    assert sorted(RunRollup.objects.filter(grain="day").values_list("runs", flat=True)) == [1] * writers
    assert rollups.drift() == []


def test_rebuild_rollups_reports_drift_and_repairs_it(version, owner, editor, workspace, capsys):
    for i in range(3):
        make_run(version, owner if i else editor, created_at=NOW + dt.timedelta(minutes=i), cost_nano=5)
    make_run(version, owner, status="pending", created_at=NOW)  # counted live, never drift
    call_command("rebuild_rollups", "--check")
    assert "match the runs" in capsys.readouterr().out

    RunRollup.objects.filter(grain="vday").update(runs=24)  # what the duplicate rows did to the totals
    with pytest.raises(CommandError, match="1 difference"):
        call_command("rebuild_rollups", "--check")
    printed = capsys.readouterr().out
    assert printed.startswith(f"vday {DAY}") and "runs stored 24, runs say 3" in printed
    assert RunRollup.objects.get(grain="vday").runs == 24  # --check changes nothing

    call_command("rebuild_rollups")
    assert "fixed 1 difference" in capsys.readouterr().out
    assert RunRollup.objects.get(grain="vday").runs == 3
    call_command("rebuild_rollups", "--check")
