"""Downloads stream in chunks of about 64 KB, not one chunk a line."""

from __future__ import annotations

from prompts_app.streaming import in_chunks


def test_lines_are_joined_into_chunks_of_about_the_given_size_and_nothing_is_lost():
    lines = [f"row {n}\n" for n in range(10_000)]
    chunks = list(in_chunks(lines, size=1000))
    assert "".join(chunks) == "".join(lines)
    assert all(len(chunk) >= 1000 for chunk in chunks[:-1]) and len(chunks) < 100


def test_nothing_in_gives_nothing_out():
    assert list(in_chunks([])) == []
