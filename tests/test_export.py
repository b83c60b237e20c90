"""CSV and JSON export of the filtered history: streamed, exact, safe in a spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from prompts_app.models import Prompt, PromptVersion
from prompts_app.selectors import export
from prompts_app.selectors.export import EXPORT_COLUMNS
from prompts_app.selectors.history import RunFilter
from tests.conftest import API_KEY, NOW, make_run


def body_of(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def runs(version, owner, editor):
    return [
        make_run(
            version,
            owner,
            created_at=NOW,
            cost_nano=1_234_567_891,
            input_text='=HYPERLINK("http://x")',
            output_text="+1 call me",
            prompt_tokens=3,
            completion_tokens=4,
            latency_ms=12.5,
        ),
        make_run(
            version,
            editor,
            created_at=NOW - dt.timedelta(minutes=1),
            cost_nano=None,
            input_text="-2+3",
            output_text="@SUM(A1)",
        ),
        make_run(
            version,
            owner,
            created_at=NOW - dt.timedelta(minutes=2),
            status="failed",
            input_text='plain, with "quotes"\nand a newline',
            output_text="",
            error="HTTP 500: boom",
        ),
    ]


def test_csv_export_streams_every_column_and_row(client_for, owner, runs):
    response = client_for(owner).get(reverse("run_export_csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    assert list(rows[0]) == EXPORT_COLUMNS
    assert [int(r["id"]) for r in rows] == [r.pk for r in runs]
    first, second, third = rows
    assert first["cost_usd"] == "1.234567891" and first["total_tokens"] == "7" and first["latency_ms"] == "12.5"
    assert first["workspace"] == "Acme" and first["prompt"] == "Support reply" and first["version"] == "1"
    assert first["user"] == "olivia" and first["model"] == "gpt-4o" and first["provider"] == "openai"
    assert first["created_at"] == NOW.isoformat()
    assert second["cost_usd"] == "" and second["user"] == "eddie"
    assert third["status"] == "failed" and third["error"] == "HTTP 500: boom"
    assert third["input_text"] == 'plain, with "quotes"\nand a newline'


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(client_for, owner, runs):
    rows = list(csv.DictReader(io.StringIO(body_of(client_for(owner).get(reverse("run_export_csv"))))))
    assert rows[0]["input_text"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["output_text"] == "'+1 call me"
    assert rows[1]["input_text"] == "'-2+3" and rows[1]["output_text"] == "'@SUM(A1)"


def test_json_export_parses_and_keeps_text_as_typed(client_for, owner, runs):
    response = client_for(owner).get(reverse("run_export_json"))
    assert response["Content-Type"] == "application/json"
    data = json.loads(body_of(response))
    assert [d["id"] for d in data] == [r.pk for r in runs]
    assert list(data[0]) == EXPORT_COLUMNS
    assert data[0]["input_text"] == '=HYPERLINK("http://x")'  # JSON is not a spreadsheet: no prefix
    assert data[0]["cost_usd"] == "1.234567891" and data[1]["cost_usd"] is None
    assert data[2]["error"] == "HTTP 500: boom"


def test_export_follows_the_filters(client_for, owner, runs):
    data = json.loads(body_of(client_for(owner).get(reverse("run_export_json"), {"status": "failed"})))
    assert [d["id"] for d in data] == [runs[2].pk]
    data = json.loads(body_of(client_for(owner).get(reverse("run_export_json"), {"q": "call"})))
    assert [d["id"] for d in data] == [runs[0].pk]


def test_an_empty_export_is_still_valid(client_for, owner, runs):
    assert json.loads(body_of(client_for(owner).get(reverse("run_export_json"), {"status": "pending"}))) == []
    text = body_of(client_for(owner).get(reverse("run_export_csv"), {"status": "pending"}))
    assert text.strip() == ",".join(EXPORT_COLUMNS)


def test_the_api_key_never_appears_in_an_export(client_for, owner, runs):
    client = client_for(owner)
    for name in ("run_export_csv", "run_export_json"):
        assert API_KEY not in body_of(client.get(reverse(name)))


def test_outsider_exports_none_of_another_workspaces_runs(client_for, outsider, runs, make_workspace, workspace):
    mine = make_workspace(owner=outsider, name="Mine", maxim_id="ws-m")
    prompt = Prompt.objects.create(workspace=mine, maxim_id="p-m", name="Mine prompt")
    own = make_run(PromptVersion.objects.create(prompt=prompt, maxim_id="v-m", number=1, model_name="m"), outsider)
    client = client_for(outsider)
    assert [d["id"] for d in json.loads(body_of(client.get(reverse("run_export_json"))))] == [own.pk]
    response = client.get(reverse("run_export_csv"), {"workspace": workspace.pk})
    assert response.status_code == 400 and b"not in any of your workspaces" in response.content


def test_export_rows_walks_keyset_chunks_without_gaps_or_repeats(version, owner, workspace):
    made = [make_run(version, owner, created_at=NOW - dt.timedelta(seconds=i // 4)) for i in range(23)]
    ids = [row["id"] for row in export.export_rows(RunFilter([workspace.pk]), chunk_size=5)]
    assert ids == [r.pk for r in sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)]


def test_anonymous_user_cannot_export(client):
    assert client.get(reverse("run_export_csv")).status_code == 302


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_rounds_latency_and_has_variables_and_draft_columns(client_for, owner, version, fmt):
    from prompts_app.models import Run

    run = make_run(version, owner, created_at=NOW, latency_ms=1234.5678901234567, is_draft=True)
    Run.objects.filter(pk=run.pk).update(input={"variables": {"name": "Ann", "company": "=Acme"}, "turns": []})
    make_run(version, owner, created_at=NOW - dt.timedelta(minutes=1), latency_ms=None)
    body = body_of(client_for(owner).get(reverse(f"run_export_{fmt}")))
    if fmt == "csv":
        draft, saved = list(csv.DictReader(io.StringIO(body)))
        assert draft["latency_ms"] == "1234.6" and saved["latency_ms"] == ""
        assert json.loads(draft["variables"]) == {"company": "=Acme", "name": "Ann"} and saved["variables"] == "{}"
        assert (draft["draft"], saved["draft"]) == ("True", "False")
        assert (draft["version"], saved["version"]) == ("", "1")  # a draft is no version
    else:
        draft, saved = json.loads(body)
        assert draft["latency_ms"] == 1234.6 and saved["latency_ms"] is None
        assert draft["variables"] == {"name": "Ann", "company": "=Acme"} and saved["variables"] == {}
        assert draft["draft"] is True and saved["draft"] is False
        assert (draft["version"], saved["version"]) == (None, 1)
