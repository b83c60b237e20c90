"""Choosing the columns: in the order chosen (the same version twice allowed), added, moved and
removed with htmx or without JavaScript, each column's input following it; the baseline kept in
the URL and by "Run again"; accessible names; the diff section never freezing on a stale state.
Maxim faked by respx (echo_maxim)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import Comparison, Run
from prompts_app.services import compare_report
from tests.conftest import make_version, post_data, turn_data

pytestmark = pytest.mark.usefixtures("inline_runs")


@pytest.fixture
def versions(prompt):
    return [
        make_version(prompt, 1),
        make_version(prompt, 2, model="gpt-4o-mini"),
        make_version(prompt, 3, model="gpt-4.1"),
    ]


def new_url(workspace) -> str:
    return reverse("comparison_new") + f"?workspace={workspace.pk}"


def columns_url(workspace) -> str:
    return reverse("comparison_columns") + f"?workspace={workspace.pk}"


def key(version) -> str:
    return f"v{version.pk}"


def chosen(page: str) -> list[str]:
    """The column keys the page lists, in order."""
    return re.findall(r'<input type="hidden" name="columns" value="([vd][0-9]+)">', page)


def uids(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="column_uid" value="([^"]+)">', page)


def run_comparison(client, workspace, keys: list[str], **extra) -> Comparison:
    response = client.post(new_url(workspace), post_data(keys, **extra))
    assert response.status_code == 302, response.content.decode()[:3000]
    return Comparison.objects.latest("pk")


# -- order and duplicates -------------------------------------------------------------------------


def test_columns_keep_the_order_chosen_and_the_same_version_may_come_twice(
    client_for, editor, workspace, versions, echo_maxim
):
    v1, v2, v3 = versions
    client = client_for(editor)
    comparison = run_comparison(client, workspace, [key(v3), key(v1), key(v3)])
    assert [c.version for c in comparison.columns.all()] == [v3, v1, v3]
    assert Run.objects.filter(comparison=comparison).count() == 3
    assert len(echo_maxim.sent) == 3  # the repeated version ran in both of its columns
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    names = re.findall(r'role="region" aria-label="(Column [0-9]: [^"]+)"', page)
    assert names[:3] == [
        "Column 1: Support reply v3 (gpt-4.1)",
        "Column 2: Support reply v1 (gpt-4o)",
        "Column 3: Support reply v3 (gpt-4.1)",
    ]


def test_add_move_and_remove_redraw_only_the_column_list(client_for, editor, workspace, versions):
    v1, v2, v3 = versions
    client = client_for(editor)
    data = {
        **post_data([key(v1)], message="Typed while the list changes"),
        "add_column": key(v1),
        "action": "column:add",
    }
    page = client.post(columns_url(workspace), data).content.decode()
    assert page.lstrip().startswith('<div id="compare-columns"')
    assert chosen(page) == [key(v1), key(v1)] and uids(page) == [key(v1), f"{key(v1)}_2"]
    # The inputs are not in the answer: a field being typed in is never replaced.
    assert "Typed while the list changes" not in page and "turn-0-content" not in page and "var__" not in page

    data = {**post_data([key(v1), key(v2), key(v3)]), "action": "column:up-2"}
    assert chosen(client.post(columns_url(workspace), data).content.decode()) == [key(v1), key(v3), key(v2)]
    data["action"] = "column:down-0"
    assert chosen(client.post(columns_url(workspace), data).content.decode()) == [key(v2), key(v1), key(v3)]
    data["action"] = "column:remove-1"
    page = client.post(columns_url(workspace), data).content.decode()
    assert chosen(page) == [key(v1), key(v3)]
    assert 'aria-label="Move column 1 (Support reply v1) up"' in page and "disabled" in page


def test_the_column_list_refuses_a_ninth_column_with_a_message(client_for, editor, workspace, versions):
    data = {**post_data([key(versions[0])] * 8), "add_column": key(versions[1]), "action": "column:add"}
    page = client_for(editor).post(columns_url(workspace), data).content.decode()
    assert len(chosen(page)) == 8
    assert 'role="alert">A comparison has at most 8 columns; remove one first.' in page


def test_without_javascript_the_column_buttons_redraw_the_page_with_everything_typed_kept(
    client_for, editor, workspace, versions, echo_maxim
):
    v1, v2, _ = versions
    data = {**post_data([key(v2), key(v1)], message="Keep this text"), "add_column": key(v2), "action": "column:add"}
    response = client_for(editor).post(new_url(workspace), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert chosen(page) == [key(v2), key(v1), key(v2)]
    assert "Keep this text" in page and 'value="Acme"' in page and 'value="Tone check"' in page
    assert "errorlist" not in page and Comparison.objects.count() == 0 and not echo_maxim.sent


def test_each_column_keeps_its_own_input_when_it_moves_even_the_same_version_twice(
    client_for, editor, workspace, versions, echo_maxim
):
    v1, _, _ = versions
    a, b = key(v1), f"{key(v1)}_2"  # the same version twice: two inputs told apart by their rows
    data = {
        "columns": [key(v1), key(v1)],
        "column_uid": [a, b],
        "repeats": "1",
        **turn_data("first column's question", prefix=f"turn__{a}"),
        **turn_data("second column's question", prefix=f"turn__{b}"),
        f"var__{a}__company": "A Co",
        f"var__{a}__name": "Ann",
        f"var__{b}__company": "B Co",
        f"var__{b}__name": "Bob",
    }
    client = client_for(editor)
    page = client.post(new_url(workspace), {**data, "action": "column:down-0"}).content.decode()  # without JavaScript
    assert uids(page) == [b, a]
    assert page.index("second column&#x27;s question") < page.index("first column&#x27;s question")
    data["column_uid"] = [b, a]  # as the moved rows post it
    assert client.post(new_url(workspace), data).status_code == 302
    columns = list(Comparison.objects.get().columns.all())
    assert [c.input["turns"][0]["content"] for c in columns] == ["second column's question", "first column's question"]
    assert [body["messages"][-1]["content"] for body in echo_maxim.sent] == [
        "second column's question",
        "first column's question",
    ]
    assert echo_maxim.sent[0]["messages"][0]["content"] == "You answer for B Co."


def test_a_column_added_with_its_own_input_brings_that_input_out_of_band(client_for, editor, workspace, versions):
    v1, v2, _ = versions
    data = {
        "columns": [key(v1)],
        "add_column": key(v2),
        "action": "column:add",
        **turn_data("x", prefix=f"turn__{key(v1)}"),
    }
    page = client_for(editor).post(columns_url(workspace), data).content.decode()
    oob = page[page.index('hx-swap-oob="beforeend:#compare-input-groups"') :]
    assert f'name="turn__{key(v2)}-0-content"' in oob and f'name="var__{key(v2)}__company"' in oob
    assert f"turn__{key(v1)}" not in page  # the existing column's input is left alone


def test_shared_variables_of_unchosen_columns_are_in_the_page_hidden_and_not_required(
    client_for, editor, workspace, prompt, versions, echo_maxim
):
    other = make_version(prompt, 4, messages=[{"role": "system", "content": "Only {{city}}."}])
    page = client_for(editor).get(new_url(workspace) + f"&columns={key(versions[0])}").content.decode()
    assert re.search(r'data-variable="city" hidden>', page) and re.search(r'data-variable="company">', page)
    comparison = run_comparison(client_for(editor), workspace, [key(versions[0]), key(versions[1])])
    assert comparison.input["variables"] == {"company": "Acme", "name": "Ada"}  # no {{city}} asked for
    assert other.pk


def test_posted_row_ids_are_checked(client_for, editor, workspace, versions):
    data = {
        **post_data([key(versions[0]), key(versions[1])]),
        "column_uid": ['x"><script>', key(versions[0])],
        "action": "column:up-1",
    }
    page = client_for(editor).post(columns_url(workspace), data).content.decode()
    assert "<script>" not in page.split("</ol>")[0]
    assert len(set(uids(page))) == 2 and all(re.fullmatch(r"v[0-9]+(_[0-9]+)?", u) for u in uids(page))


def test_outsiders_get_404_and_viewers_403_on_the_column_list(client_for, outsider, viewer, workspace, versions):
    data = {**post_data([key(versions[0])]), "add_column": key(versions[1]), "action": "column:add"}
    assert client_for(outsider).post(columns_url(workspace), data).status_code == 404
    assert client_for(viewer).post(columns_url(workspace), data).status_code == 403
    assert client_for(viewer).get(columns_url(workspace)).status_code == 405


# -- the baseline in the URL ------------------------------------------------------------------------


def test_the_baseline_is_a_column_number_in_the_url_and_run_again_keeps_it(
    client_for, editor, workspace, versions, echo_maxim
):
    client = client_for(editor)
    comparison = run_comparison(client, workspace, [key(v) for v in versions])
    columns = list(comparison.columns.all())
    url = reverse("comparison_detail", args=[comparison.pk])
    page = client.get(url, {"baseline": 2}).content.decode()
    assert 'aria-current="true" class="current"><span class="muted">2.</span>' in page
    assert f'data-column="{columns[1].pk}"' not in page.split('id="compare-config"')[0]  # not diffed with itself
    assert 'name="baseline" value="2"' in page  # the "Run again" form sends it
    assert f'hx-push-url="{url}?baseline=3"' in page

    fragment = client.get(reverse("comparison_diff", args=[comparison.pk]), {"baseline": 3}).content.decode()
    assert 'id="id_baseline" value="3" hx-swap-oob="true"' in fragment  # "Run again" follows the switch

    response = client.post(
        reverse("comparison_run_again", args=[comparison.pk]), {"repeats": 1, "batch": 2, "baseline": 3}
    )
    assert response.status_code == 302 and response["Location"] == f"{url}?baseline=3"
    assert 'name="baseline" value="3"' in client.get(response["Location"]).content.decode()
    for nonsense in ("0", "9", "abc", "-1"):
        assert client.get(url, {"baseline": nonsense}).status_code == 200  # falls back to the default


def test_a_viewer_gets_no_out_of_band_run_again_field(client_for, editor, viewer, workspace, versions, echo_maxim):
    comparison = run_comparison(client_for(editor), workspace, [key(v) for v in versions[:2]])
    fragment = client_for(viewer).get(reverse("comparison_diff", args=[comparison.pk]), {"baseline": 2})
    assert "hx-swap-oob" not in fragment.content.decode()


# -- the diff section never freezes --------------------------------------------------------------------


def test_a_run_finishing_while_the_diffs_are_built_is_watched_so_the_section_catches_up(
    client_for, editor, workspace, versions, echo_maxim, monkeypatch
):
    comparison = run_comparison(client_for(editor), workspace, [key(v) for v in versions])
    last = Run.objects.filter(comparison=comparison).order_by("column__position").last()
    Run.objects.filter(pk=last.pk).update(status=Run.Status.PENDING, created_at=timezone.now())
    real = compare_report.output_diffs

    def diffs_then_the_run_finishes(*args, **kwargs):
        diffs = real(*args, **kwargs)
        Run.objects.filter(pk=last.pk).update(status=Run.Status.SUCCESS)  # the worker stores it meanwhile
        return diffs

    monkeypatch.setattr(compare_report, "output_diffs", diffs_then_the_run_finishes)
    page = client_for(editor).get(reverse("comparison_diff", args=[comparison.pk])).content.decode()
    assert "No finished run yet." in page
    # The section's own watch asks for that run: answered at once, it brings the missing row.
    assert "/watch/?" in page and f"pending={last.pk}" in page and 'sse-connect="' in page

    monkeypatch.setattr(compare_report, "output_diffs", real)
    page = client_for(editor).get(reverse("comparison_diff", args=[comparison.pk])).content.decode()
    assert "No finished run yet." not in page and "sse-connect" not in page


# -- accessible names and errors ----------------------------------------------------------------------


def test_sections_have_names_and_errors_are_alerts(client_for, editor, workspace, versions, echo_maxim):
    client = client_for(editor)
    comparison = run_comparison(client, workspace, [key(v) for v in versions[:2]])
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    assert 'role="region" aria-label="Column 2: Support reply v2 (gpt-4o-mini)"' in page
    assert 'aria-labelledby="compare-diff-title"' in page and 'id="compare-diff-title"' in page
    assert 'role="region" aria-label="Column 2: Support reply v2 (gpt-4o-mini) against the baseline, Column 1' in page
    assert 'aria-labelledby="compare-config-title"' in page

    invalid = client.post(new_url(workspace), post_data([key(versions[0])], var__company="")).content.decode()
    assert '<ul class="errorlist" id="columns-errors" role="alert"><li>Pick at least 2' in invalid
    assert '<ul class="errorlist" role="alert"><li>Fill in {{company}}' in invalid


def test_the_chosen_columns_go_into_the_address_so_a_reload_keeps_them(client_for, editor, workspace, versions):
    v1, v2, _ = versions
    client = client_for(editor)
    data = {**post_data([key(v2)]), "add_column": key(v1), "action": "column:add"}
    response = client.post(columns_url(workspace), data)
    address = response["HX-Replace-Url"]
    assert address == f"{reverse('comparison_new')}?workspace={workspace.pk}&columns={key(v2)}&columns={key(v1)}"
    assert chosen(client.get(address).content.decode()) == [key(v2), key(v1)]  # the reload
