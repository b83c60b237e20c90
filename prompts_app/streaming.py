"""Streamed downloads in chunks of about 64 KB: one chunk a line made a 10,000-row export
take tens of seconds (a write, and a pass through the middleware, per line)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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


def one_at_a_time(user_id: object, chunks: Iterable[str]) -> Iterator[str] | None:
    """`chunks`, holding a download slot until they are sent or the client goes; None when the
    person (or this process) already has as many downloads running as it may."""
    if not SLOTS.take(user_id):
        return None
    return _released_after(user_id, iter(chunks))


def _released_after(user_id: object, chunks: Iterator[str]) -> Iterator[str]:
    try:
        yield from chunks
    finally:  # also when the client hangs up: Django closes the response's iterator
        SLOTS.give_back(user_id)


def download(user_id: object, lines: Iterable[str], *, content_type: str, filename: str) -> HttpResponse:
    """A streamed attachment of `lines` in chunks, or a 429 saying to try again (see PER_USER)."""
    chunks = one_at_a_time(user_id, in_chunks(lines))
    if chunks is None:
        busy = HttpResponse(BUSY_MESSAGE, status=429, content_type="text/plain; charset=utf-8")
        busy["Retry-After"] = "5"
        return busy
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
