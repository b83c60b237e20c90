"""Downloads hold a server thread while they stream: two at a time per person (and a few per
process), so twenty parallel exports by one viewer cannot leave a teammate's page waiting (found
by the hostile-teammate trial: a batch page took 57 s)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app import streaming
from prompts_app.models import AuditEvent
from tests.batch_seed import seed


@pytest.fixture
def batch(workspace, prompt, editor):
    return seed(workspace, prompt, editor, cases=3, failing={})


def test_a_second_download_waits_for_the_first_and_others_are_not_held_up(client_for, viewer, editor, batch):
    csv_url = reverse("batch_export_csv", args=[batch.pk])
    mine = client_for(viewer)
    first = mine.get(csv_url)  # streaming: not read yet, so still holding its slot
    second = mine.get(reverse("batch_export_md", args=[batch.pk]))  # CSV and Markdown at once is fine
    assert first.status_code == second.status_code == 200
    audited = AuditEvent.objects.count()
    again = mine.get(reverse("batch_export_json", args=[batch.pk]))
    assert again.status_code == 429 and "try again when it has finished" in again.content.decode()
    assert mine.get(reverse("run_export_csv")).status_code == 429  # any download of theirs
    assert AuditEvent.objects.count() == audited  # refused: nothing was exported
    theirs = client_for(editor).get(csv_url)
    assert theirs.status_code == 200  # a teammate is not held up by them
    b"".join(theirs.streaming_content)

    b"".join(second.streaming_content)
    assert b"case" in b"".join(first.streaming_content)  # the first ones finish ...
    after = mine.get(reverse("batch_export_json", args=[batch.pk]))
    assert after.status_code == 200  # ... and the next one goes
    b"".join(after.streaming_content)


def test_a_download_the_client_abandons_gives_its_slot_back():
    other = streaming.one_at_a_time("someone", ["x"])
    chunks = streaming.one_at_a_time("someone", ["a" * 10, "b" * 10])
    assert next(chunks) == "a" * 10
    assert streaming.one_at_a_time("someone", ["c"]) is None  # still streaming
    chunks.close()  # the client hung up: the server closes the response's iterator
    again = streaming.one_at_a_time("someone", ["c"])
    assert again is not None and list(again) == ["c"] and list(other) == ["x"]


def test_a_download_whose_audit_record_fails_gives_its_slot_back(client_for, viewer, batch, monkeypatch):
    # Found by the hostile trial: the slot was taken, the audit write failed ("database is locked"),
    # and the unsent response's slot was never given back: that person's exports were 429 until a restart.
    from prompts_app.services import audit

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(audit, "record_export", locked)
    mine = client_for(viewer)
    mine.raise_request_exception = False
    for _ in range(3):
        assert mine.get(reverse("run_export_csv")).status_code == 500
    assert streaming.SLOTS.holders() == {}
    monkeypatch.undo()
    response = mine.get(reverse("run_export_csv"))
    assert response.status_code == 200
    b"".join(response.streaming_content)


def test_a_download_that_outlives_a_reset_gives_back_nothing_it_no_longer_holds(client_for, viewer, batch):
    """Slots.reset() (between tests) forgets every slot; a download still open then must not give
    one back afterwards: it raised KeyError, or freed a slot of a download started since."""
    client = client_for(viewer)
    old = client.get(reverse("batch_export_csv", args=[batch.pk]))  # open, holding its slot
    streaming.SLOTS.reset()
    new = client.get(reverse("batch_export_md", args=[batch.pk]))
    assert streaming.SLOTS.holders() == {viewer.pk: 1}
    b"".join(old.streaming_content)  # the old one ends
    assert streaming.SLOTS.holders() == {viewer.pk: 1}  # the new download still holds its own
    b"".join(new.streaming_content)
    assert streaming.SLOTS.holders() == {}
