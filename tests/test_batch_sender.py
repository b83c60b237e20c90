"""Cells claimed ahead ("armed", services/batch_sender.py): a thread that has an answer sends the
next armed cell at once, yet Maxim never has more than the batch's limit at once, and an armed
cell that never left goes back to the queue when the batch stops sending."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from prompts_app.models import BatchCell, BatchComparison, BatchSettings, Run
from prompts_app.services import batch_liveness, batch_worker, batches
from prompts_app.services.batch_sender import Sender, disarm
from prompts_app.services.batches import ColumnChoice
from tests.test_batch_throughput import batch_of, wait_for


def most_at_once(requests) -> int:
    """The largest number of requests the server held at one moment."""
    edges = sorted([(r.arrived, 1) for r in requests] + [(r.finished, -1) for r in requests])
    held = most = 0
    for _, step in edges:
        held += step
        most = max(most, held)
    return most


def sent_per_cell(fake) -> Counter:
    return Counter(r.body["messages"][0]["content"] for r in fake.requests_to("/v1/prompts/run"))


def test_maxim_never_has_more_than_the_drives_share_at_once_though_cells_are_armed_ahead(
    transactional_db, settings, fake_maxim, workspace, editor
):
    """A limit of 2 shared with another live drive: this one sends one cell at a time, one more
    armed behind it, and each is sent once."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued, driven below by hand
    fake_maxim.run_delay = 0.1
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=10)  # concurrency 2
    batch_liveness.Heartbeat(batch.pk)  # another worker's drive of the batch, alive, sending nothing
    while batch_worker.drive(batch.pk, slice_seconds=30):
        pass

    requests = fake_maxim.requests_to("/v1/prompts/run")
    assert most_at_once(requests) == 1  # its share of the limit, never passed
    assert len(requests) == 10 and max(sent_per_cell(fake_maxim).values()) == 1
    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE
    assert Run.objects.filter(batch_comparison=batch, status=Run.Status.SUCCESS).count() == 10


def test_a_pause_queues_the_armed_cells_again_and_nothing_more_leaves(
    transactional_db, settings, fake_maxim, workspace, editor
):
    """Every run history keeps was sent; the cells armed when the person paused are queued again
    with no run (none reached Maxim), and a resume sends each of them once."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.3
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=12)
    drive = threading.Thread(target=batch_worker.drive, args=(batch.pk,), kwargs={"slice_seconds": 30})
    drive.start()
    wait_for(lambda: batch.cells.filter(state=BatchCell.State.SUCCESS).count() >= 2)
    batches.pause(BatchComparison.objects.get(pk=batch.pk))
    drive.join(timeout=20)
    assert not drive.is_alive()

    sent = len(fake_maxim.requests_to("/v1/prompts/run"))
    states = Counter(batch.cells.values_list("state", flat=True))
    assert states[BatchCell.State.RUNNING] == 0 and states[BatchCell.State.SUCCESS] == sent < 12
    assert states[BatchCell.State.QUEUED] == 12 - sent
    assert not batch.cells.filter(state=BatchCell.State.QUEUED, run__isnull=False).exists()
    assert Run.objects.filter(batch_comparison=batch).count() == sent  # no run left for an unsent cell
    time.sleep(0.5)
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == sent  # nothing left after the pause

    batches.resume(BatchComparison.objects.get(pk=batch.pk))
    while batch_worker.drive(batch.pk, slice_seconds=30):
        pass
    assert sorted(sent_per_cell(fake_maxim).values()) == [1] * 12
    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE


def test_a_drive_that_hands_over_leaves_no_armed_cell_behind(transactional_db, settings, fake_maxim, workspace, editor):
    """Out of time, a drive hands over with cells with Maxim: every run history keeps was sent, and
    every cell not sent is queued again without a run (an armed one left behind was settled
    "interrupted" once the drive's heartbeat stopped, and its cell failed, though it never left)."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.4
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=8)
    assert batch_worker.drive(batch.pk, slice_seconds=0.2) is True  # out of time, cells with Maxim
    wait_for(lambda: not any(t.name.endswith("-finish") for t in threading.enumerate()))

    sent = len(fake_maxim.requests_to("/v1/prompts/run"))
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == sent
    assert batch.cells.filter(state=BatchCell.State.QUEUED, run__isnull=True).count() == 8 - sent
    assert Run.objects.filter(batch_comparison=batch).count() == sent
    while batch_worker.drive(batch.pk, slice_seconds=30):
        pass
    assert sorted(sent_per_cell(fake_maxim).values()) == [1] * 8
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == 8


def test_disarm_queues_armed_cells_again_and_leaves_a_settled_one_alone(
    batch_inline, echo_maxim, workspace, batch_test_set, two_versions, editor
):
    batch = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=[ColumnChoice(v) for v in two_versions], user=editor
    )
    plan = batch_worker.plan_for(batch.pk)
    with transaction.atomic():
        armed = batch_worker._claim(plan, 3, started=True)
    settled = armed[2]  # settled by another worker meanwhile (its drive judged dead): kept as it is
    Run.objects.filter(pk=settled.run_id).update(status=Run.Status.INTERRUPTED)
    BatchCell.objects.filter(pk=settled.pk).update(state=BatchCell.State.FAILED)

    disarm(armed)
    cells = {cell.pk: cell for cell in BatchCell.objects.filter(pk__in=[c.pk for c in armed])}
    assert [(cells[c.pk].state, cells[c.pk].run_id) for c in armed[:2]] == [(BatchCell.State.QUEUED, None)] * 2
    assert not Run.objects.filter(pk__in=[c.run_id for c in armed[:2]]).exists()
    assert cells[settled.pk].state == BatchCell.State.FAILED and cells[settled.pk].run_id == settled.run_id
    assert echo_maxim.sent == []


class Gate:
    """A call to Maxim that waits until the test opens the gate; counts calls at once."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.calls: list[BatchCell] = []
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, cell: BatchCell) -> None:
        with self._lock:
            self.calls.append(cell)
            self.now += 1
            self.most = max(self.most, self.now)
        self.open.wait(10)
        with self._lock:
            self.now -= 1


def answers(sender: Sender) -> list[BatchCell]:
    found = []
    while sender.has_answers:
        for cell, failure in sender.answers(timeout=0.1):
            assert failure is None
            found.append(cell)
    return found


def gated(cells: int, clear_for: float = 60) -> tuple[Gate, Sender, list[BatchCell]]:
    """A sender of `cells` cells, two of them with the (closed) gate, the rest armed."""
    gate = Gate()
    sender = Sender(gate, refused=lambda cell: False, threads=8, clear_for=clear_for)
    armed = [BatchCell(pk=n) for n in range(1, cells + 1)]
    sender.offer(armed, cap=2)
    wait_for(lambda: len(gate.calls) == 2)
    return gate, sender, armed


def test_the_sender_keeps_to_its_cap_and_sends_each_armed_cell_once():
    gate, sender, _ = gated(7)
    assert sender.sending == 2 and sender.outstanding == 7
    gate.open.set()
    wait_for(lambda: sender.sending == 0)
    sender.shutdown()
    assert gate.most == 2 and sorted(c.pk for c in gate.calls) == list(range(1, 8))
    assert sorted(c.pk for c in answers(sender)) == list(range(1, 8)) and sender.outstanding == 0


def test_a_halted_sender_sends_nothing_armed_and_gives_the_armed_cells_back():
    gate, sender, cells = gated(5)
    assert sender.halt() == cells[2:]  # for disarm(): they never left
    gate.open.set()
    wait_for(lambda: sender.sending == 0)
    sender.shutdown()
    assert len(gate.calls) == 2 and len(answers(sender)) == 2 and sender.outstanding == 0


def test_after_a_refusal_no_armed_cell_leaves_until_the_drive_resumes():
    """A 429 halts the sender at once: the other threads finish their calls and take nothing more;
    the drive decides (after its claim saw the Retry-After) when to send again."""
    sender = Sender(lambda cell: None, refused=lambda cell: cell.pk == 1, threads=1, clear_for=60)
    cells = [BatchCell(pk=n) for n in range(1, 5)]
    sender.offer(cells, cap=1)
    wait_for(lambda: sender.sending == 0)
    sender.resume()  # the drive's claim, made before it took the refusal: no resume yet
    sender.offer([], cap=1)
    assert sender.halted and sender.sending == 0
    assert [c.pk for c in answers(sender)] == [1] and sender.halted and sender.outstanding == 3
    sender.resume()  # its claim after the refusal was stored, the Retry-After waited out
    sender.offer([], cap=1)
    wait_for(lambda: sender.sending == 0)
    sender.shutdown()
    assert [c.pk for c in answers(sender)] == [2, 3, 4] and sender.outstanding == 0


def test_an_answer_not_taken_yet_is_still_outstanding():
    """A thread's last answer is queued after it stopped sending: until the drive takes it, the
    cell is the drive's (bench_batch: the drive, seeing nothing armed or with Maxim, idled with an
    answer in the queue, its cell "running", until the slice ended 30 s later)."""
    sender = Sender(lambda cell: None, refused=lambda cell: False, threads=1, clear_for=60)
    sender.offer([BatchCell(pk=1)], cap=1)
    wait_for(lambda: sender.sending == 0)
    assert sender.outstanding == 1 and sender.has_answers
    assert [c.pk for c in answers(sender)] == [1] and sender.outstanding == 0
    sender.shutdown()


def test_an_armed_cell_waits_for_a_fresh_look_before_it_leaves():
    """The drive last looked at the batch (a claim) longer ago than `clear_for`: an answer does not
    send the next armed cell, which stays armed until the drive looks again and finds the batch
    free to send (or takes it back)."""
    gate, sender, cells = gated(5, clear_for=0.05)
    time.sleep(0.1)  # the look is stale: another worker may have stored a 429, or the batch paused
    assert sender.wants_a_look
    gate.open.set()
    wait_for(lambda: sender.sending == 0)
    assert len(gate.calls) == 2 and sender.outstanding == 5  # 2 answers not taken, 3 still armed
    sender.offer([], cap=2)  # the drive's look: still running, no Retry-After
    wait_for(lambda: len(gate.calls) == 5 and sender.sending == 0)
    sender.shutdown()
    assert sorted(c.pk for c in answers(sender)) == [c.pk for c in cells] and not sender.wants_a_look


def test_a_retry_after_another_worker_stored_stops_this_drive_s_armed_cells(
    transactional_db, settings, fake_maxim, workspace, editor
):
    """Two workers share the workspace's Retry-After. Here the other one's 429 is stored while this
    drive has its cells with Maxim and one armed: when they answer, the armed cell does not leave
    (before: a thread sent it with its answer, up to Maxim's latency after the 429 was stored); it
    is queued again and sent once after the wait."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.6
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=6)  # concurrency 2, one armed
    drive = threading.Thread(target=batch_worker.drive, args=(batch.pk,), kwargs={"slice_seconds": 30})
    drive.start()
    wait_for(lambda: len(fake_maxim.requests_to("/v1/prompts/run")) == 2)
    time.sleep(0.15)  # the drive's claim is older than CLEAR_FOR
    BatchSettings.objects.update_or_create(
        workspace=workspace, defaults={"throttled_until": timezone.now() + timedelta(seconds=2)}
    )
    stored = time.monotonic()  # the fake's clock
    drive.join(timeout=30)
    while batch_worker.drive(batch.pk, slice_seconds=30):
        pass

    arrived = sorted(r.arrived for r in fake_maxim.requests_to("/v1/prompts/run"))
    waiting = [t - stored for t in arrived if stored < t < stored + 1.9]
    assert waiting == []  # nothing left while the workspace waited out the Retry-After
    assert sorted(sent_per_cell(fake_maxim).values()) == [1] * 6
    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE


def test_a_429_is_stored_at_once_though_no_claim_is_due(transactional_db, settings, fake_maxim, workspace, editor):
    """Its Retry-After is what the other workers wait on: the drive stores the refusal as soon as it
    takes it, not with its next claim (here: after the next answer, a second later; before, the
    drive kept it while its free slots were fewer than a claim's step)."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 1.0
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=40, concurrency=32)
    fake_maxim.fail_next("/v1/prompts/run", 429, headers={"Retry-After": "5"})
    drive = threading.Thread(target=batch_worker.drive, args=(batch.pk,), kwargs={"slice_seconds": 30})
    drive.start()
    wait_for(lambda: any(r.finished for r in fake_maxim.requests_to("/v1/prompts/run")))
    refused = time.monotonic()
    wait_for(lambda: BatchSettings.objects.filter(throttled_until__isnull=False).exists(), timeout=5)
    stored = time.monotonic() - refused
    batches.cancel(BatchComparison.objects.get(pk=batch.pk))
    drive.join(timeout=30)
    assert stored < 0.5


def test_a_burst_of_429s_that_halves_the_limit_to_1_does_not_stall_two_drives(
    transactional_db, settings, fake_maxim, workspace, editor
):
    """Hostile trial: ten 429s took a limit of 32 down to 1 with two workers on the batch. A drive
    whose part of it was 0 (the other's armed cells counted) kept its armed cells, its free slots
    (1) below its claim step (2), so it claimed nothing more and sent nothing until its slice
    ended (18-29 s of silence per slice)."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.1
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=80, concurrency=32)
    began = time.monotonic()
    drives = [
        threading.Thread(target=batch_worker.drive, args=(batch.pk,), kwargs={"slice_seconds": 60}) for _ in range(2)
    ]
    for drive in drives:
        drive.start()
    wait_for(lambda: len(fake_maxim.requests_to("/v1/prompts/run")) >= 40)
    fake_maxim.fail_next("/v1/prompts/run", 429, headers={"Retry-After": "0"}, times=10)
    for drive in drives:
        drive.join(timeout=70)
    took = time.monotonic() - began

    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE
    assert took < 30  # 80 cells, most of them one at a time, 0.1 s each; 60 s (the slice) when stalled
    requests = fake_maxim.requests_to("/v1/prompts/run")
    answered = Counter(r.body["messages"][0]["content"] for r in requests if r.status == 200)
    assert sorted(answered.values()) == [1] * 80  # each cell answered once (10 were refused first)


def test_slow_checks_keep_the_drive_alive_and_its_cells_its_own(
    transactional_db, settings, monkeypatch, fake_maxim, workspace, editor
):
    """Hostile trial: the checks ran in the drive's main thread while it stored the answers. A regex
    check waiting 2 s per cell for its child process stopped the heartbeat for over STALE_SECONDS, and
    another worker's settle() failed this live drive's cells "interrupted". The checks now run in the
    thread that sent the cell, and the main thread goes on beating."""
    from prompts_app import checks

    monkeypatch.setattr(batch_liveness, "STALE_SECONDS", 1.5)
    monkeypatch.setattr(batch_liveness, "BEAT_SECONDS", 0.2)
    judge = checks.Contains.judge

    def slow_judge(self, output):
        time.sleep(0.5)  # a regex check waiting for its child process, say
        return judge(self, output)

    monkeypatch.setattr(checks.Contains, "judge", slow_judge)
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=16, concurrency=8)
    batch.checks = [{"type": "contains", "value": "Echo"}]
    batch.save(update_fields=["checks"])
    drive = threading.Thread(target=batch_worker.drive, args=(batch.pk,), kwargs={"slice_seconds": 30})
    drive.start()
    settled = 0
    while drive.is_alive():  # another worker, looking for dead workers' cells as it does while it sends
        settled += batch_worker.settle(batch.pk)
        time.sleep(0.1)
    drive.join()

    cells = BatchCell.objects.filter(batch=batch)
    assert settled == 0 and cells.filter(state=BatchCell.State.FAILED).count() == 0
    assert cells.filter(state=BatchCell.State.SUCCESS, passed=True).count() == 16
    assert sorted(sent_per_cell(fake_maxim).values()) == [1] * 16
