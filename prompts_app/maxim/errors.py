"""The client's one error type."""

from __future__ import annotations

# Appended to failures of calls that change something: Maxim may have acted before the failure.
MAYBE_DONE = " It may still have been processed; refresh before trying again."


class MaximError(Exception):
    """A failed Maxim call. `message` is short, safe to show, and never holds the key."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        not_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # True when trying again later may help; the client has already retried what was safe.
        self.retryable = retryable
        self.retry_after = retry_after
        # True when the request never left: no connection to Maxim was made, or none was free in
        # the pool. Like a 429, nothing was processed; a batch sends such a cell again.
        self.not_sent = not_sent

    def __str__(self) -> str:
        return self.message
