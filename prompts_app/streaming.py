"""Streamed downloads in chunks of about 64 KB: one chunk a line made a 10,000-row export
take tens of seconds (a write, and a pass through the middleware, per line)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.http import HttpResponse, StreamingHttpResponse

from prompts_app.slots import Slots

CHUNK_CHARS = 64 * 1024


def in_chunks(lines: Iterable[str], size: int = CHUNK_CHARS) -> Iterator[str]:
    pending: list[str] = []
    filled = 0
    for line in lines:
        pending.append(line)
        filled += len(line)
        if filled >= size:
            yield "".join(pending)
            pending, filled = [], 0
    if pending:
        yield "".join(pending)


# -- how many at once --------------------------------------------------------------------------
# A download holds a server thread for as long as it streams (a 50,000-cell batch: seconds). Twenty
# at once from one person left a teammate's page waiting a minute: two per person and a few per
# process; the rest are told to try again, which a person does once theirs has finished.
PER_USER = 2
PER_PROCESS = 3
BUSY_MESSAGE = (
    "One of your downloads is still being prepared (or the server is busy with others): try again when it has finished."
)

SLOTS = Slots(per_user=PER_USER, per_process=PER_PROCESS)


def one_at_a_time(user_id: object, chunks: Iterable[str]) -> _Held | None:
    """`chunks`, holding a download slot until they are sent, the client goes, or the response is
    closed unsent; None when the person (or this process) already has as many running as it may."""
    generation = SLOTS.take_slot(user_id)
    if generation is None:
        return None
    return _Held(user_id, generation, iter(chunks))


class _Held:
    """An iterator that gives its slot back once: at its end, or when closed (Django closes a
    response's iterator when the client goes; a view closes it when it fails before answering).
    Not a generator: an unstarted generator's `finally` never runs, and its slot was lost."""

    def __init__(self, user_id: object, generation: int, chunks: Iterator[str]) -> None:
        self._user_id, self._generation, self._chunks, self._held = user_id, generation, chunks, True

    def __iter__(self) -> _Held:
        return self

    def __next__(self) -> str:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._held:
            self._held = False
            SLOTS.give_back(self._user_id, self._generation)  # not after a reset() forgot it


def download(
    user_id: object,
    lines: Iterable[str],
    *,
    content_type: str,
    filename: str,
    on_start: Callable[[], object] | None = None,
) -> HttpResponse:
    """A streamed attachment of `lines` in chunks, or a 429 saying to try again (see PER_USER).
    `on_start` (the audit record) runs once the download may go ahead; if it fails, the slot is
    given back and the error goes on."""
    chunks = one_at_a_time(user_id, in_chunks(lines))
    if chunks is None:
        busy = HttpResponse(BUSY_MESSAGE, status=429, content_type="text/plain; charset=utf-8")
        busy["Retry-After"] = "5"
        return busy
    try:
        if on_start is not None:
            on_start()
    except BaseException:
        chunks.close()
        raise
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
