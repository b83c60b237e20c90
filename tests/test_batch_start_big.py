"""Big batches: cells are created in chunks, workers do not see the batch until all its cells
exist, a batch above MAX_CELLS is refused with a message, and 10,000 x 4 cells take seconds."""

from __future__ import annotations

import time

import pytest

from prompts_app.models import BatchCell, BatchComparison, TestCase, TestSet
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import make_version

pytestmark = pytest.mark.usefixtures("batch_inline")


def start(workspace, test_set, versions, user, **extra):
    columns = [ColumnChoice(v) for v in versions]
    return batches.start_batch(workspace=workspace, test_set=test_set, columns=columns, user=user, **extra)


def test_cells_are_made_in_chunks_and_workers_wait_for_the_last(
    monkeypatch, workspace, batch_test_set, two_versions, editor
):
    seen = []
    insert = batches._insert_cells

    def watched(batch, case_ids):
        state = BatchComparison.objects.get(pk=batch.pk).status
        seen.append((len(case_ids), state, batch_worker.claim(batch.pk, 4)))
        insert(batch, case_ids)

    monkeypatch.setattr(batches, "CELL_CHUNK", 4)  # one case's 2 columns x 2 repeats
    monkeypatch.setattr(batches, "_insert_cells", watched)
    batch = start(workspace, batch_test_set, two_versions, editor, repeats=2)
    assert [n for n, _, _ in seen] == [1, 1, 1]
    assert all(state == BatchComparison.Status.PREPARING and claimed == [] for _, state, claimed in seen)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.RUNNING and batch.cells.count() == batch.total_cells == 12
    order = list(batch.cells.order_by("id").values_list("case__position", "repeat", "column__position"))
    assert order == sorted(order)  # case by case, so the first rows of the matrix fill first


def test_a_failure_half_way_leaves_no_half_made_batch(monkeypatch, workspace, batch_test_set, two_versions, editor):
    insert = batches._insert_cells

    def fail_second(batch, case_ids):
        if BatchCell.objects.filter(batch=batch).exists():
            raise RuntimeError("disk full")
        insert(batch, case_ids)

    monkeypatch.setattr(batches, "CELL_CHUNK", 2)
    monkeypatch.setattr(batches, "_insert_cells", fail_second)
    with pytest.raises(RuntimeError):
        start(workspace, batch_test_set, two_versions, editor)
    assert not BatchComparison.objects.exists() and not BatchCell.objects.exists()


def test_a_batch_above_the_cap_is_refused_with_what_to_change(
    monkeypatch, workspace, batch_test_set, two_versions, editor
):
    monkeypatch.setattr(batches, "MAX_CELLS", 10)
    with pytest.raises(batches.BatchError) as caught:
        start(workspace, batch_test_set, two_versions, editor, repeats=2)
    message = str(caught.value)
    assert "12 cells" in message and "10" in message and "fewer" in message
    assert not BatchComparison.objects.exists()


def test_ten_thousand_cases_by_four_columns_start_in_seconds(workspace, prompt, editor):
    test_set = TestSet.objects.create(workspace=workspace, name="Big", variable_names=["company", "name"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": "Acme", "name": f"n{n}"}) for n in range(10_000)
    )
    versions = [make_version(prompt, n) for n in range(1, 5)]
    wall, cpu = time.perf_counter(), time.process_time()
    batch = start(workspace, test_set, versions, editor)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"\n10,000 x 4 cells started in {cpu:.2f} s CPU ({wall:.2f} s wall)")
    assert batch.cells.count() == 40_000
    assert cpu < 3.0  # CPU time: the machine is shared, wall time would measure the neighbours
