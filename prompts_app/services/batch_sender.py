"""A drive's sending threads, and the few armed cells that keep them busy.

A cell's slot used to wait, after each answer, for the drive's main thread: to see the answer,
claim a cell in a transaction and hand it to a thread (bench_batch: 27 of 32 slots in flight on
average, 44 ms per slot and cell beyond Maxim's latency on one worker). Now the main thread claims
a few cells ahead ("armed": claimed in its transaction, their runs marked started, not sent yet)
and a thread that has an answer takes the next armed cell and sends it at once; the main thread
stores the answers and tops the armed cells up meanwhile.

The rules that make this safe (services/batch_worker.py's docstring has the whole set):
* At most `cap` cells are with Maxim at once: the drive's part of the batch's limit, set by the
  main thread from each claim (the batch's current limit, this drive's fair share, and what the
  other drives have running).
* An armed cell's run is marked started: a worker that dies leaves it "interrupted" like the
  cells it had in flight, never sent again. At most `reserve` cells are armed, so a death costs
  at most that many cells that had not left (they can be run again by "Run failed cells again").
* Nothing armed leaves after a 429 (`halt`, set by the thread that got it) or once the main thread
  stops sending (pause, cancel, a Retry-After, the end of the drive): the main thread takes the
  armed cells back with disarm() and queues them again, their runs deleted (never sent).
* An armed cell leaves only within CLEAR_FOR of the drive's last look at the batch (a claim, or
  a look of its own when no claim is due) finding it running and the workspace not waiting out a
  429: a pause, or a Retry-After another worker stored, stops this drive's armed cells within that
  time. Before, a thread sent its armed cell whenever it had an answer, however long ago the drive
  had looked (the hostile trial of #12: with two workers, cells left 0.08-0.43 s after the other
  worker had stored a 429's Retry-After).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connections, transaction

from prompts_app.models import BatchCell, Run

CLEAR_FOR = 0.1  # seconds an armed cell may leave after the drive last saw the batch free to send


class Sender:
    """The drive's cells between their claim and their answer: armed ones, and those with Maxim."""

    def __init__(
        self,
        call: Callable[[BatchCell], None],
        refused: Callable[[BatchCell], bool],
        threads: int,
        clear_for: float = CLEAR_FOR,
    ) -> None:
        self._clear_for = clear_for
        self._call = call  # sends one cell's run and reads its answer (stores nothing)
        self._refused = refused  # the answer says Maxim did not process it (a 429): send no more
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="batch")
        self._lock = threading.Lock()
        self._armed: collections.deque[BatchCell] = collections.deque()
        self._sending = 0
        self.cap = 0
        self.halted = False
        self._uncollected = 0  # answers queued, not taken by answers() yet
        self._unseen_refusals = 0  # refused answers the main thread has not taken yet: no resume before
        self._clear_until = 0.0  # monotonic: armed cells may leave until then (offer() sets it)
        # (cell, the exception that escaped its call, or None), in the order they finished
        self._answered: queue.SimpleQueue[tuple[BatchCell, Exception | None]] = queue.SimpleQueue()

    @property
    def outstanding(self) -> int:
        """Cells claimed by this drive that the drive has not taken an answer of: armed, with
        Maxim, or answered (a thread's last answer may be queued after it stopped sending)."""
        return len(self._armed) + self._sending + self._uncollected

    @property
    def sending(self) -> int:
        return self._sending

    def offer(self, cells: list[BatchCell], *, cap: int) -> None:
        """Arm `cells` and let up to `cap` be with Maxim at once; sends what fits now. The caller has
        just seen the batch running and not waiting out a 429: armed cells may leave for `clear_for`."""
        with self._lock:
            self._armed.extend(cells)
            self.cap = cap
            self._clear_until = time.monotonic() + self._clear_for
            if self.halted:
                return
            starting = []
            while self._armed and self._sending < self.cap:
                starting.append(self._armed.popleft())
                self._sending += 1
        for cell in starting:
            self._pool.submit(self._send_from, cell)

    def halt(self) -> list[BatchCell]:
        """Send nothing more; the armed cells, for the caller to disarm()."""
        with self._lock:
            self.halted = True
            taken = list(self._armed)
            self._armed.clear()
            return taken

    def resume(self) -> None:
        """Send again, unless a refusal came in that the drive has not seen: its claim, made before
        the refusal was stored, could not honour the Retry-After yet."""
        with self._lock:
            self.halted = self._unseen_refusals > 0

    @property
    def wants_a_look(self) -> bool:
        """Cells are armed and the drive's last look is half way to stale: look again (or claim)."""
        return bool(self._armed) and not self.halted and time.monotonic() > self._clear_until - self._clear_for / 2

    @property
    def has_answers(self) -> bool:
        return not self._answered.empty()

    def answers(self, *, timeout: float) -> list[tuple[BatchCell, Exception | None]]:
        """The calls that finished: at least one (waiting up to `timeout`), and any others already
        done. A queue the threads fill, not concurrent.futures.wait(), which hangs a waiter on
        every future in flight each time it is called (once per answer)."""
        try:
            done = [self._answered.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self._answered.get_nowait())
            except queue.Empty:
                break
        refused = sum(1 for cell, failure in done if failure is None and self._refused(cell))
        with self._lock:
            self._uncollected -= len(done)
            self._unseen_refusals -= refused
        return done

    def shutdown(self) -> None:
        self._pool.shutdown()

    def _send_from(self, cell: BatchCell | None) -> None:
        """A thread's work: send the cell, hand its answer over, take the next armed cell while allowed."""
        try:
            while cell is not None:
                failure = None
                try:
                    self._call(cell)
                except Exception as error:  # noqa: BLE001  (a bug: the drive raises it; its cells are settled)
                    failure = error
                with self._lock:
                    if failure is None and self._refused(cell):
                        self._unseen_refusals += 1
                    if failure is not None or self._refused(cell):
                        self.halted = True  # a 429: nothing more leaves before the main thread saw it
                    self._answered.put((cell, failure))
                    self._uncollected += 1
                    if self._armed and not self.halted and self._sending <= self.cap and self._clear():
                        cell = self._armed.popleft()
                    else:
                        cell = None
                        self._sending -= 1
        finally:
            connections.close_all()  # this thread's own connections, if any

    def _clear(self) -> bool:
        """The drive looked recently enough (else the cell stays armed until its next look)."""
        return time.monotonic() < self._clear_until


def disarm(cells: list[BatchCell]) -> None:
    """Armed cells that never left: their runs are deleted (never sent: nothing for history or
    costs; pending runs are never rolled up) and the cells queued again, in one transaction."""
    if not cells:
        return
    runs = [cell.run_id for cell in cells]
    with transaction.atomic():
        BatchCell.objects.filter(
            pk__in=[cell.pk for cell in cells],
            run__in=runs,
            run__status=Run.Status.PENDING,
            state=BatchCell.State.RUNNING,
        ).update(run=None, state=BatchCell.State.QUEUED, worker=None)
        Run.objects.filter(pk__in=runs, status=Run.Status.PENDING).delete()
