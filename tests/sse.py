"""Reading the server-sent events of a streamed response (the comparison page's watch), as the
browser's EventSource does: `event:` names it, `data:` lines are joined, a blank line ends it."""

from __future__ import annotations


class EventStream:
    """The events of one streamed response, read one at a time (the server's generator runs in the
    reading thread, so a test may store a run between two events)."""

    def __init__(self, response) -> None:
        self.response = response
        self._chunks = iter(response.streaming_content)
        self._buffer = ""

    def next(self) -> tuple[str, str] | None:
        """(name, data) of the next event, or None when the stream has ended. A `retry:` alone is
        ("retry", its ms)."""
        while True:
            while "\n\n" not in self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return None
                self._buffer += chunk.decode()
            block, self._buffer = self._buffer.split("\n\n", 1)
            if not all(line.startswith(":") for line in block.splitlines()):
                return _parse(block)  # a block of comments only is no event: the browser skips it

    def close(self) -> None:
        """What a browser leaving the page does: the server's generator is closed (its slot freed).
        Through the test client's wrapper of the stream, which closes the response without closing
        the database connection a test still uses (response.close() alone would close it)."""
        self.response._iterator.close()


def read_events(response, *, count: int | None = None) -> list[tuple[str, str]]:
    """Every event until the stream ends, or the first `count` (then the stream is closed)."""
    stream = EventStream(response)
    events: list[tuple[str, str]] = []
    try:
        while (count is None or len(events) < count) and (event := stream.next()) is not None:
            events.append(event)
    finally:
        stream.close()
    return events


def _parse(block: str) -> tuple[str, str]:
    name, data = "message", []
    for line in block.splitlines():
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "retry":
            name, data = "retry", [value]
    return name, "\n".join(data)
