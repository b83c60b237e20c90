"""Counting what holds a server thread for long (a held request, a stream of results, a
download): at most so many per person and so many in this process, so that one person's tabs,
or a crowd of waiting pages, cannot take every thread gunicorn has. The counts are per process,
like the threads they protect."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Slots:
    """Up to `per_user` slots for one person and `per_process` in all. `per_process` may be a
    callable, read when first needed (a setting, so tests can change it before any use)."""

    def __init__(self, *, per_user: int, per_process: int | Callable[[], int]) -> None:
        self.per_user = per_user
        self._per_process = per_process
        self._lock = threading.Lock()
        self._by_user: dict[object, int] = {}
        self._taken = 0
        self._generation = 0  # moved by reset(): a slot taken before it is not given back after it

    @property
    def per_process(self) -> int:
        limit = self._per_process
        return limit() if callable(limit) else limit

    def take(self, user_id: object) -> bool:
        """A slot for `user_id`, or False when they (or this process) already hold as many as they may."""
        return self.take_slot(user_id) is not None

    def take_slot(self, user_id: object) -> int | None:
        """As take(), with the generation to give the slot back with (None: no slot). Read under the
        lock with the slot: read before it, it could name the generation before a reset() in between."""
        with self._lock:
            if self._by_user.get(user_id, 0) >= self.per_user or self._taken >= self.per_process:
                return None
            self._by_user[user_id] = self._by_user.get(user_id, 0) + 1
            self._taken += 1
            return self._generation

    def give_back(self, user_id: object, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # forgotten by reset() while it was held
            self._taken -= 1
            self._by_user[user_id] -= 1
            if not self._by_user[user_id]:
                del self._by_user[user_id]

    @contextmanager
    def held(self, user_id: object) -> Iterator[bool]:
        """True and a slot for the block, or False (and no slot)."""
        generation = self.take_slot(user_id)
        try:
            yield generation is not None
        finally:
            if generation is not None:
                self.give_back(user_id, generation)

    def holders(self) -> dict[object, int]:
        """Slots held per person (tests, diagnostics)."""
        with self._lock:
            return dict(self._by_user)

    def reset(self) -> None:
        """Forget every slot (tests: a test that failed mid-stream must not starve the next)."""
        with self._lock:
            self._by_user.clear()
            self._taken = 0
            self._generation += 1
