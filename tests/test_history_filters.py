"""Each history filter narrows the rows and the totals alike; bad values get a message, not a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse

from prompts_app.models import Prompt, PromptVersion, Role
from tests.conftest import NOW, make_run


@pytest.fixture
def world(workspace, make_workspace, owner, editor, version, make_user):
    """Two workspaces the owner belongs to, two prompts, three versions, two users, varied runs."""
    second = make_workspace(owner=owner, name="Beta", maxim_id="ws-b", members=[(editor, Role.VIEWER)])
    other_prompt = Prompt.objects.create(workspace=second, maxim_id="prompt-b", name="Summariser")
    v2 = PromptVersion.objects.create(prompt=version.prompt, maxim_id="version-2", number=2, model_name="gpt-4o-mini")
    vb = PromptVersion.objects.create(
        prompt=other_prompt, maxim_id="version-b", number=1, provider="anthropic", model_name="claude-3-5-haiku"
    )
    runs = {
        "a": make_run(
            version,
            owner,
            created_at=NOW - dt.timedelta(days=3),
            input_text="refund my order",
            output_text="Sure, refunded",
            cost_nano=100,
        ),
        "b": make_run(
            v2,
            editor,
            created_at=NOW - dt.timedelta(days=2),
            input_text="where is my parcel",
            output_text="It ships tomorrow",
            cost_nano=200,
        ),
        "c": make_run(
            vb,
            owner,
            created_at=NOW - dt.timedelta(days=1),
            input_text="summarise this memo",
            output_text="A memo about refunds",
            cost_nano=None,
        ),
        "d": make_run(
            v2,
            owner,
            status="failed",
            created_at=NOW,
            input_text="=cmd|' /C calc'!A0",
            output_text="",
            error="HTTP 500",
        ),
        # Pending now: one left pending for longer is settled as interrupted when history loads.
        "e": make_run(
            version, editor, status="pending", created_at=dt.datetime.now(dt.timezone.utc), input_text="waiting"
        ),
    }
    return {"runs": runs, "v2": v2, "vb": vb, "second": second, "other_prompt": other_prompt}


def result(client, world, **params):
    response = client.get(reverse("run_history"), params)
    assert response.status_code == 200
    by_pk = {run.pk: name for name, run in world["runs"].items()}
    names = {by_pk[r.pk] for r in response.context["page"].runs}
    totals = response.context["totals"]
    if params.get("q"):  # a text search's totals come from their own request
        assert totals is None and b'hx-trigger="load"' in response.content
        totals = client.get(reverse("run_history_totals"), params).context["totals"]  # no-JS page: context to read
    return names, totals


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"a", "b", "c", "d", "e"}),
        ({"model": "gpt-4o-mini"}, {"b", "d"}),
        ({"provider": "anthropic"}, {"c"}),
        ({"status": "failed"}, {"d"}),
        ({"status": "pending"}, {"e"}),
        ({"date_from": "2026-11-18", "date_to": "2026-11-19"}, {"b", "c"}),
        ({"date_from": "2026-11-20"}, {"d", "e"}),
        ({"date_to": "2026-11-17"}, {"a"}),
        ({"q": "refund"}, {"a", "c"}),  # words starting with "refund", in input or output
        ({"q": "parcel ships"}, {"b"}),  # every word must match, across input and output
        ({"q": "memo", "provider": "openai"}, set()),
    ],
)
def test_each_filter_narrows_rows_and_totals_alike(client_for, owner, world, params, expected):
    names, totals = result(client_for(owner), world, **params)
    assert names == expected
    runs = [world["runs"][n] for n in expected]
    assert totals.runs == len(runs)
    assert totals.cost_nano == sum(r.cost_nano or 0 for r in runs)
    assert totals.total_tokens == sum(r.total_tokens for r in runs)
    assert totals.unpriced_runs == sum(1 for r in runs if r.status == "success" and r.cost_nano is None)


def test_filter_by_workspace_prompt_version_and_user(client_for, owner, editor, world, workspace, version):
    client = client_for(owner)
    assert result(client, world, workspace=world["second"].pk)[0] == {"c"}
    assert result(client, world, workspace=workspace.pk)[0] == {"a", "b", "d", "e"}
    assert result(client, world, prompt=world["other_prompt"].pk)[0] == {"c"}
    assert result(client, world, version=world["v2"].pk)[0] == {"b", "d"}
    assert result(client, world, version=version.pk)[0] == {"a", "e"}
    assert result(client, world, user=editor.pk)[0] == {"b", "e"}
    names, totals = result(client, world, user=editor.pk, status="success")
    assert names == {"b"} and totals.cost_nano == 200


def test_text_with_no_word_characters_falls_back_to_a_substring_match(client_for, owner, world):
    assert result(client_for(owner), world, q="=cmd|")[0] == {"d"}


def test_filters_are_kept_in_the_form_and_the_export_links(client_for, owner, world):
    body = client_for(owner).get(reverse("run_history"), {"model": "gpt-4o-mini", "q": "parcel"}).content.decode()
    assert 'value="gpt-4o-mini"' in body and 'value="parcel"' in body
    assert "/runs/export.csv?model=gpt-4o-mini&amp;q=parcel" in body


def test_back_and_forward_get_the_whole_page_with_the_filters_of_the_address(client_for, owner, world):
    # htmx keeps no page snapshots (historyCacheSize 0): on Back it asks the server for the address.
    client = client_for(owner)
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    body = client.get(reverse("run_history"), {"q": "parcel"}, headers=restore).content.decode()
    assert "<html" in body and 'value="parcel"' in body and 'id="history-table"' in body
    fragment = client.get(reverse("run_history"), {"q": "parcel"}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'id="history-table"' in fragment


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-13-45"}, "Enter a valid date"),
        ({"date_from": "2026-11-20", "date_to": "2026-11-01"}, "is before"),
        ({"version": "999999"}, "not in any of your workspaces"),
        ({"prompt": "abc"}, "not in any of your workspaces"),
        ({"user": "424242"}, "not in any of your workspaces"),
        ({"status": "exploded"}, "Select a valid choice"),
        ({"provider": "nope"}, "Select a valid choice"),
        ({"q": "x" * 201}, "at most 200 characters"),
    ],
)
def test_bad_filter_values_get_a_message_and_keep_the_input(client_for, owner, world, params, message):
    response = client_for(owner).get(reverse("run_history"), params)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body and "No runs shown" in body
    assert "page" not in response.context


def test_a_version_of_a_workspace_you_are_not_in_is_not_a_valid_filter(client_for, editor, world):
    # The editor is a viewer in "Beta" too, but not in any workspace holding a third prompt:
    stranger_prompt = Prompt.objects.create(workspace=world["second"], maxim_id="p-z", name="Z")
    world["second"].memberships.filter(user=editor).delete()
    response = client_for(editor).get(reverse("run_history"), {"prompt": stranger_prompt.pk})
    assert "not in any of your workspaces" in response.content.decode()


def test_totals_for_whole_months_and_ragged_days_agree_with_the_runs(client_for, owner, version, workspace):
    days = [
        dt.date(2026, 1, 30),
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 15),
        dt.date(2026, 4, 1),
    ]
    for i, day in enumerate(days):
        make_run(
            version,
            owner,
            created_at=dt.datetime.combine(day, dt.time(23, 59), tzinfo=dt.timezone.utc),
            cost_nano=10**i,
        )
    client = client_for(owner)
    for start, end in [
        ("2026-01-31", "2026-03-01"),
        ("2026-02-01", "2026-02-28"),
        ("2026-01-01", "2026-03-31"),
        ("2026-02-02", "2026-02-27"),
        ("2026-03-01", ""),
        ("", "2026-02-28"),
    ]:
        response = client.get(reverse("run_history"), {"date_from": start, "date_to": end})
        lo = dt.date.fromisoformat(start) if start else dt.date.min
        hi = dt.date.fromisoformat(end) if end else dt.date.max
        expected = sum(10**i for i, day in enumerate(days) if lo <= day <= hi)
        assert response.context["totals"].cost_nano == expected, (start, end)


@pytest.mark.parametrize(
    "params",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"before": "-99999999999999999-1"},
        {"after": "-99999999999999999-1"},
    ],
)
def test_extreme_dates_and_cursors_get_a_message_not_an_error(client_for, owner, world, params):
    response = client_for(owner).get(reverse("run_history"), params)
    assert response.status_code == 200 and "No runs shown" in response.content.decode()


def test_unknown_query_parameters_are_not_carried_into_links(client_for, owner, world):
    body = client_for(owner).get(reverse("run_history"), {"status": "success", "junk": "x"}).content.decode()
    assert "junk" not in body and "status=success" in body


def test_without_sqlite_full_text_search_the_text_filter_matches_substrings(client_for, owner, world, monkeypatch):
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "postgresql")  # what text_q checks; the query stays portable
    names, totals = result(client_for(owner), world, q="efund")  # a substring, not a word start
    assert names == {"a", "c"} and totals.runs == 2


def test_text_search_totals_load_in_a_second_request_that_also_works_without_js(client_for, owner, world):
    client = client_for(owner)
    page = client.get(reverse("run_history"), {"q": "refund"}).content.decode()
    assert "/runs/totals/?q=refund" in page and "Adding up the matching runs" in page
    fragment = client.get(reverse("run_history_totals"), {"q": "refund"}, HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<p id="history-totals"')
    full = client.get(reverse("run_history_totals"), {"q": "refund"})
    assert "<html" in full.content.decode() and full.context["totals"].cost_nano == 100


def test_totals_request_with_bad_filters_says_so_and_does_not_reload_itself(client_for, owner, world):
    response = client_for(owner).get(
        reverse("run_history_totals"), {"q": "x", "date_from": "nope"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "fix the filters" in body and "hx-trigger" not in body


def test_totals_request_only_counts_the_users_workspaces(client_for, outsider, world):
    response = client_for(outsider).get(reverse("run_history_totals"), {"q": "refund"})
    assert response.context["totals"].runs == 0


@pytest.mark.parametrize("search", ["this database's own", "portable substring"])
def test_text_search_finds_error_messages_and_prompt_names(client_for, owner, world, version, monkeypatch, search):
    from django.db import connection

    if search == "portable substring":
        monkeypatch.setattr(connection, "vendor", "postgresql")  # what text_q checks; the query stays portable
    limited = make_run(
        version,
        owner,
        status="failed",
        created_at=NOW,
        input_text="hi",
        output_text="",
        error="Maxim answered 429: rate limiting, try again in 20 s",
    )
    world["runs"]["limited"] = limited
    client = client_for(owner)
    names, totals = result(client, world, q="rate limiting")
    assert names == {"limited"} and totals.runs == 1
    names, totals = result(client, world, q="Summariser")  # the prompt's name, in no run's text
    assert names == {"c"} and totals.runs == 1
    Prompt.objects.filter(name="Summariser").update(name="Fault finder")
    assert result(client, world, q="Fault")[0] == {"c"}  # a renamed prompt is found by its new name


def test_prompt_names_from_other_workspaces_do_not_widen_the_search(client_for, outsider, world):
    names, totals = result(client_for(outsider), world, q="Summariser")
    assert names == set() and totals.runs == 0


@pytest.mark.parametrize("search", ["this database's own", "portable substring"])
def test_a_run_matched_by_its_text_and_its_prompts_name_is_counted_once(
    client_for, owner, world, version, monkeypatch, search
):
    from django.db import connection

    if search == "portable substring":
        monkeypatch.setattr(connection, "vendor", "postgresql")
    Prompt.objects.filter(pk=version.prompt_id).update(name="Refund desk")  # a, b, d, e; a's text says "refund" too
    names, totals = result(client_for(owner), world, q="refund")
    assert names == {"a", "b", "c", "d", "e"}  # c: "refunds" in its output, in another prompt
    runs = [world["runs"][name] for name in names]
    assert totals.runs == 5 and totals.total_tokens == sum(run.total_tokens for run in runs)
    assert totals.cost_nano == 300 and totals.priced_runs == 2 and totals.unpriced_runs == 1  # c: succeeded, unpriced


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 join is SQLite's; PostgreSQL sums the ORM way")
@pytest.mark.parametrize(
    "params",
    [{}, {"date_from": dt.date(2026, 11, 18)}, {"status": "success"}, {"model": "gpt-4o-mini"}, {"draft": False}],
)
def test_text_totals_read_through_the_fts_join_equal_the_orms_run_by_run_sums(owner, world, params):
    from prompts_app.selectors import costs, history

    scope = history.scope_for_user(owner)
    run_filter = history.RunFilter(scope.workspace_ids, q="refund", **params)
    orm = costs.run_totals(history.filter_runs(run_filter, newest_first=False, prompt_names=False))
    keyed = history.filter_runs(history.RunFilter(scope.workspace_ids, **params))
    joined = history._matched_totals(keyed, history.fts_match(["refund"]))
    assert joined == orm and joined["runs"] == len([1 for name in "ac" if keyed.filter(pk=world["runs"][name].pk)])
    assert history._matched_totals(keyed.none(), history.fts_match(["refund"])) == {}
