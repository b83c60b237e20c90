"""Requests held open until a run is stored (long-poll), so a page shows each result the
moment it exists instead of on a polling timer.

A run finished in this process wakes the held requests at once; one finished by another
gunicorn worker is seen within RECHECK_SECONDS: on SQLite by a stat of a stamp file beside
the database that run_stored() touches (one thread per process stats it while requests are
held and wakes them when it changed; they count their pending runs again only then),
elsewhere by counting them. At most
MAXIMUI_HELD_REQUESTS requests (or streams: views/compare_watch.py) are held per process (a
fraction of gunicorn's threads) and HELD_PER_USER per person (prompts_app/slots.py), so waiting
pages never starve other users: when all slots are taken, the page is answered at once with
what is stored and asks again after BUSY_RETRY_MS.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from prompts_app.models import Run
from prompts_app.slots import Slots

HOLD_SECONDS = 20.0
# A re-check is a stat of the stamp file (microseconds), so it can be frequent: a run stored by
# another worker shows within this of its store.
RECHECK_SECONDS = 0.02
COUNT_ANYWAY_SECONDS = 1.0
BUSY_RETRY_MS = 500
# Half of `make run`'s 8 gunicorn threads: a worker whose every thread is held queues other
# users' pages behind runs that take seconds (bench/bench_load.py: 16 comparisons at once
# gave other pages a p95 of 0.9-1.3 s with 8 of 8 held, 0.6 s with 4).
DEFAULT_HELD_REQUESTS = 4
MAX_WATCHED = 100  # a comparison has at most 8 columns x 10 repeats

_stored = threading.Condition()
# Bumped (under _stored) each time a store is seen: a held request waits for it to move, so a
# store between its count and its wait is never missed.
_generation = 0
_holding = 0  # requests held in this process; the stamp is watched only while there are some
_stamp_watcher: threading.Thread | None = None
_stamp_file: str | None = None  # the stamp of the database the latest held request reads
# Per person and process: two open pages wait at once; more tabs retry after BUSY_RETRY_MS.
HELD_PER_USER = 2
SLOTS = Slots(
    per_user=HELD_PER_USER,
    per_process=lambda: getattr(settings, "MAXIMUI_HELD_REQUESTS", DEFAULT_HELD_REQUESTS),
)


_answered_here = 0  # runs of this process Maxim answered that are not stored yet (runner.py)
SETTLE_SECONDS = 0.03  # at most this long a held stream waits for them before drawing


def answered(count: int) -> None:
    """The runner's note: `count` more (or, negative, fewer) answers of this process are waiting to be stored."""
    global _answered_here
    with _stored:
        _answered_here += count
        if _answered_here <= 0:
            _answered_here = 0
            _stored.notify_all()


def settled_here(deadline: float) -> None:
    """Wait, until `deadline` at most, while answers of this process are still being stored: a
    comparison's columns are answered within milliseconds of each other, and a stream that drew
    each store as it came drew four times, each draw taking the GIL from the stores it waited for
    (bench_browser_compare: the last column 0.1 s after its answer)."""
    with _stored:
        while _answered_here > 0 and (left := deadline - time.monotonic()) > 0:
            _stored.wait(left)


def run_stored() -> None:
    """Wake every request held on this database: a run's result was just committed. Held
    requests of this process wake at once, other processes' on their next stat of the stamp."""
    _touch_stamp()
    _wake_all()


def _wake_all() -> None:
    global _generation
    with _stored:
        _generation += 1
        _stored.notify_all()


def wait_for_runs(run_ids: Iterable[int], *, user_id: int | None = None, timeout: float | None = None) -> bool:
    """Hold until one of the pending runs `run_ids` is no longer pending, or `timeout` passes.

    Returns False, without waiting, when this process already holds as many requests as it
    may, or as many for this user (one person's open tabs cannot take every slot): the caller
    answers with the current state and asks the page to retry shortly.
    """
    ids = list(run_ids)[:MAX_WATCHED]
    if not ids:
        return hold(lambda: True, user_id=user_id, timeout=timeout)
    still_pending = _pending_counter(ids)
    return hold(lambda: still_pending() != len(ids), user_id=user_id, timeout=timeout)


def hold(changed: Callable[[], bool], *, user_id: int | None = None, timeout: float | None = None) -> bool:
    """Hold until `changed()` is true, re-checked each time a run is stored (and at least every
    COUNT_ANYWAY_SECONDS), or `timeout` passes; the same slots and the same False as wait_for_runs.
    `changed` should be one cheap query: it may run every RECHECK_SECONDS on a server database."""
    with holding(user_id) as place:
        if place is None:
            return False
        place.until(changed, time.monotonic() + (HOLD_SECONDS if timeout is None else timeout))
        return True


class Place:
    """A held request's slot, for as long as it is held: it may wait for stores several times
    (a stream of results, views/compare_watch.py)."""

    def __init__(self, stamp: str | None) -> None:
        self._recheck = stamp is None

    def until(self, changed: Callable[[], bool], deadline: float) -> bool:
        """Wait until `changed()` is true (True) or the monotonic `deadline` passes (False)."""
        seen = _generation
        while not changed():
            seen = _wait_for_a_store(seen, deadline, recheck=self._recheck)
            if seen is None:
                return False
        return True

    def until_stored(self, run_ids: list[int], deadline: float) -> bool:
        """Wait until one of the pending runs `run_ids` is stored (True) or `deadline` passes."""
        ids = run_ids[:MAX_WATCHED]
        still_pending = _pending_counter(ids)
        return self.until(lambda: still_pending() != len(ids), deadline)


@contextmanager
def holding(user_id: int | None) -> Iterator[Place | None]:
    """A held request's slot while the block lasts, or None when this process already holds as
    many requests as it may, or as many for this person: answer at once and have the page retry."""
    with SLOTS.held(user_id) as taken:
        if not taken:
            yield None
            return
        stamp = _stamp_path()
        _hold(stamp)
        try:
            yield Place(stamp)
        finally:
            _release()


def _pending_counter(ids: list[int]) -> Callable[[], int]:
    """How many of `ids` are still pending: the SQL built once, not per re-check (the ORM's
    compiling was most of a held request's CPU under load)."""
    sql, params = Run.objects.filter(pk__in=ids, status=Run.Status.PENDING).values("pk").query.sql_with_params()
    count_sql = f"SELECT COUNT(*) FROM ({sql}) pending"

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(count_sql, params)
            return cursor.fetchone()[0]

    return count


def _hold(stamp: str | None) -> None:
    """Count a held request in; the first one starts this process's watcher of the stamp."""
    global _holding, _stamp_watcher, _stamp_file
    with _stored:
        _holding += 1
        _stamp_file = stamp or _stamp_file
        _stored.notify_all()  # a watcher idling for want of held requests resumes
        if stamp is not None and _stamp_watcher is None:
            _stamp_watcher = threading.Thread(target=_watch_stamp, name="run-watch", daemon=True)
            _stamp_watcher.start()


def _release() -> None:
    global _holding
    with _stored:
        _holding -= 1


def _watch_stamp() -> None:
    """One stat of the stamp per RECHECK_SECONDS for the whole process (not one per held
    request: each wake-up takes the GIL from whatever page is being drawn), waking the held
    requests when another process stored a run. Idle while nothing is held."""

    def stamp() -> object:
        path = _stamp_file
        try:
            return path, os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return path, None

    seen = stamp()
    while True:
        with _stored:
            while not _holding:
                _stored.wait()
        time.sleep(RECHECK_SECONDS)
        if (now := stamp()) != seen:
            seen = now
            _wake_all()  # (a new database's stamp, in tests, wakes them once: a recount)


def _touch_stamp() -> None:
    path = _stamp_path()
    if path is not None:
        with open(path, "a"):
            # An explicit time: the kernel's own (UTIME_NOW) moves in ticks of several ms, so
            # two runs stored within one tick would leave the stamp unchanged for the second.
            now = time.time_ns()
            os.utime(path, ns=(now, now))


def _stamp_path() -> str | None:
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    return None if name == ":memory:" or name.startswith("file:") else f"{name}.runs-stored"


def _wait_for_a_store(seen: int, deadline: float, *, recheck: bool) -> int | None:
    """Sleep until a run is stored after generation `seen` (or COUNT_ANYWAY_SECONDS pass: a run
    settled by the sweep touches no stamp; or RECHECK_SECONDS when there is no stamp to watch);
    the generation to wait past next, or None at the deadline."""
    recount = time.monotonic() + (RECHECK_SECONDS if recheck else COUNT_ANYWAY_SECONDS)
    with _stored:
        while _generation == seen and (left := min(deadline, recount) - time.monotonic()) > 0:
            _stored.wait(left)
        now = _generation
    return now if time.monotonic() < deadline else None
