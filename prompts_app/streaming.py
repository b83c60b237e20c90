"""Streamed downloads in chunks of about 64 KB: one chunk a line made a 10,000-row export
take tens of seconds (a write, and a pass through the middleware, per line)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
