"""Choosing columns, running them, the pages and fragments, permissions; Maxim faked by respx."""

from __future__ import annotations


import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app.models import Comparison, Draft, Prompt, Run
from tests.conftest import make_version, post_data, turn_data

pytestmark = pytest.mark.usefixtures("inline_runs")


@pytest.fixture
def versions(prompt):
    other = Prompt.objects.create(workspace=prompt.workspace, maxim_id="prompt-2", name="Refunds")
    return [
        make_version(prompt, 1),
        make_version(prompt, 2, model="gpt-4o-mini", model_parameters={"temperature": 0.9}),
        make_version(other, 1, model="gpt-4.1", messages=[{"role": "system", "content": "Refunds for {{company}}."}]),
    ]


def new_url(workspace) -> str:
    return reverse("comparison_new") + f"?workspace={workspace.pk}"


def keys(*versions) -> list[str]:
    return [f"v{v.pk}" for v in versions]


def make_comparison(client, workspace, versions, **extra) -> Comparison:
    response = client.post(new_url(workspace), post_data(keys(*versions), **extra))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Comparison.objects.latest("pk")


# -- choosing columns ------------------------------------------------------------------------


def test_new_page_lists_versions_grouped_by_prompt(client_for, editor, workspace, versions):
    page = client_for(editor).get(new_url(workspace)).content.decode()
    assert "Support reply" in page and "Refunds" in page
    assert all(f'value="v{v.pk}"' in page for v in versions)
    assert "data-submit-shortcut" in page
    assert 'name="submit_token"' in page


def test_it_rejects_fewer_than_two_columns_and_keeps_the_input(client_for, editor, workspace, versions, echo_maxim):
    response = client_for(editor).post(new_url(workspace), post_data(keys(versions[0]), message="Keep me"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Pick at least 2 columns to compare (you picked 1)." in page
    assert "Keep me" in page and "Tone check" in page
    assert f'name="columns" value="v{versions[0].pk}"' in page
    assert Comparison.objects.count() == 0 and not echo_maxim.sent


def test_it_rejects_more_than_eight_columns(client_for, editor, workspace, prompt, echo_maxim):
    many = [make_version(prompt, n) for n in range(1, 10)]
    response = client_for(editor).post(new_url(workspace), post_data(keys(*many)))
    assert "Pick at most 8 columns (you picked 9)." in response.content.decode()
    assert Comparison.objects.count() == 0


def test_an_empty_message_is_a_field_error_when_the_versions_hold_no_text(
    client_for, editor, workspace, prompt, echo_maxim
):
    empty = [make_version(prompt, n, messages=[]) for n in (1, 2)]
    response = client_for(editor).post(new_url(workspace), post_data(keys(*empty), message="  "))
    assert response.status_code == 200
    assert response.content.decode().count("Type the message to send: this version&#x27;s own messages are empty") == 1
    assert Comparison.objects.count() == 0


def test_variables_alone_compare_versions_whose_messages_hold_the_text(
    client_for, editor, workspace, versions, echo_maxim
):
    # Turns are optional extra input, as on a version's run form.
    response = client_for(editor).post(new_url(workspace), post_data(keys(*versions[:2]), message=""))
    assert response.status_code in (200, 302)
    comparison = Comparison.objects.get()
    assert comparison.columns.count() == 2
    sent = [body["messages"] for body in echo_maxim.sent]
    assert len(sent) == 2 and all(m[-1]["content"] == "Hello, I am Ada." for m in sent)


def test_every_variable_of_every_column_must_be_filled(client_for, editor, workspace, versions, echo_maxim):
    data = post_data(keys(*versions[:2]))
    del data["var__name"]
    response = client_for(editor).post(new_url(workspace), data)
    assert "Fill in {{name}}: a version uses it." in response.content.decode()


def test_a_version_from_a_workspace_the_user_is_not_in_is_a_404(
    client_for, editor, workspace, versions, make_workspace, outsider
):
    foreign_ws = make_workspace(owner=outsider, name="Other", maxim_id="ws-9")
    foreign = make_version(Prompt.objects.create(workspace=foreign_ws, maxim_id="p9", name="Theirs"), 1)
    response = client_for(editor).post(new_url(workspace), post_data(keys(versions[0], foreign)))
    assert response.status_code == 404
    assert Comparison.objects.count() == 0


def test_a_version_of_another_own_workspace_is_not_a_choice(
    client_for, editor, owner, workspace, versions, make_workspace
):
    second = make_workspace(owner=editor, name="Second", maxim_id="ws-2")
    elsewhere = make_version(Prompt.objects.create(workspace=second, maxim_id="p2", name="Elsewhere"), 1)
    response = client_for(editor).post(new_url(workspace), post_data(keys(versions[0], elsewhere)))
    assert response.status_code == 200
    assert f"v{elsewhere.pk} is not a version of this workspace." in response.content.decode()


def test_the_inputs_fragment_shows_the_union_of_variables_without_errors(client_for, editor, workspace, versions):
    url = reverse("comparison_inputs") + f"?workspace={workspace.pk}"
    response = client_for(editor).post(
        url,
        {"columns": keys(versions[0], versions[2]), "shared_input": "on", **turn_data("typed"), "var__company": "Acme"},
    )
    page = response.content.decode()
    assert 'id="compare-inputs"' in page
    assert "{{company}}" in page and "{{name}}" in page and "typed" in page and 'value="Acme"' in page
    assert "errorlist" not in page


def test_the_inputs_fragment_gives_each_column_its_own_fields_when_not_shared(client_for, editor, workspace, versions):
    url = reverse("comparison_inputs") + f"?workspace={workspace.pk}"
    page = client_for(editor).post(url, {"columns": keys(*versions[:2])}).content.decode()
    assert f'name="turn__v{versions[0].pk}-0-content"' in page and f'name="turn__v{versions[1].pk}-0-content"' in page


# -- running -----------------------------------------------------------------------------------


def test_saving_runs_every_column_and_stores_each_result(client_for, editor, workspace, versions, echo_maxim):
    comparison = make_comparison(client_for(editor), workspace, versions)
    assert [c.version for c in comparison.columns.all()] == versions
    runs = Run.objects.filter(comparison=comparison).order_by("column__position")
    assert [r.status for r in runs] == ["success"] * 3
    assert [r.output_text for r in runs] == [
        "Echo gpt-4o: Where is my order?",
        "Echo gpt-4o-mini: Where is my order?",
        "Echo gpt-4.1: Where is my order?",
    ]
    sent = sorted(echo_maxim.sent, key=lambda b: b["versionId"])
    assert {b["versionId"] for b in sent} == {v.maxim_id for v in versions}
    assert sent[0]["messages"][0]["content"] == "You answer for Acme."
    assert all(r.cost_nano is not None and r.column_id for r in runs)


def test_the_detail_page_shows_each_column_with_output_tokens_cost_and_latency(
    client_for, editor, workspace, versions, echo_maxim
):
    comparison = make_comparison(client_for(editor), workspace, versions)
    page = client_for(editor).get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    for column in comparison.columns.all():
        assert f'id="column-{column.pk}"' in page
    assert "Echo gpt-4o-mini: Where is my order?" in page
    assert "Tokens" in page and "Cost" in page and " ms" in page
    assert "hx-trigger" not in page.split('id="compare-diff"')[0]  # nothing left to poll


def test_per_column_input_sends_each_column_its_own_message(client_for, editor, workspace, versions, echo_maxim):
    a, b = versions[:2]
    data = {
        "columns": keys(a, b),
        "repeats": "1",
        **turn_data("first", prefix=f"turn__v{a.pk}"),
        **turn_data("second", prefix=f"turn__v{b.pk}"),
        f"var__v{a.pk}__company": "A",
        f"var__v{a.pk}__name": "x",
        f"var__v{b.pk}__company": "B",
        f"var__v{b.pk}__name": "y",
    }
    response = client_for(editor).post(new_url(workspace), data)
    assert response.status_code == 302
    by_version = {body["versionId"]: body for body in echo_maxim.sent}
    assert by_version[a.maxim_id]["messages"][-1]["content"] == "first"
    assert by_version[b.maxim_id]["messages"][0]["content"] == "You answer for B."
    assert Comparison.objects.get().shared_input is False


def test_a_draft_column_sends_its_own_content_with_the_base_versions_ids(
    client_for, editor, workspace, versions, echo_maxim
):
    base = versions[0]
    draft = Draft.objects.create(
        prompt=base.prompt,
        user=editor,
        base_version=base,
        model_name="gpt-4o-mini",
        provider="openai",
        messages=[{"role": "system", "content": "Draft voice for {{company}}."}],
        model_parameters={"temperature": 0},
    )
    response = client_for(editor).post(new_url(workspace), post_data([f"d{draft.pk}", f"v{versions[1].pk}"]))
    assert response.status_code == 302
    column = Comparison.objects.get().columns.get(position=0)
    assert column.is_draft and column.version == base
    body = next(b for b in echo_maxim.sent if b["messages"][0]["content"] == "Draft voice for Acme.")
    assert (body["promptId"], body["versionId"], body["modelName"]) == (
        base.prompt.maxim_id,
        base.maxim_id,
        "gpt-4o-mini",
    )
    assert body["modelParameters"] == {"temperature": 0}
    assert column.runs.get().is_draft
    page = client_for(editor).get(reverse("comparison_detail", args=[column.comparison_id])).content.decode()
    assert f"Draft of Support reply (from v{base.number})" in page


def test_a_draft_begun_blank_is_named_new_not_after_the_version_its_runs_are_stored_against(
    client_for, editor, workspace, versions, echo_maxim
):
    # New-user trial: a blank draft in a comparison read "Draft of Support reply (on v5)", v5 being
    # only the prompt's newest version, and its name changed with the next version made.
    draft = Draft.objects.create(
        prompt=versions[0].prompt,
        user=editor,
        base_version=None,
        model_name="gpt-4o-mini",
        provider="openai",
        messages=[{"role": "system", "content": "Fresh voice for {{company}}."}],
    )
    form = client_for(editor).get(new_url(workspace)).content.decode()
    assert "Your draft (new)" in form
    response = client_for(editor).post(new_url(workspace), post_data([f"d{draft.pk}", f"v{versions[1].pk}"]))
    assert response.status_code == 302
    column = Comparison.objects.get().columns.get(position=0)
    page = client_for(editor).get(reverse("comparison_detail", args=[column.comparison_id])).content.decode()
    assert "Draft of Support reply (new)" in page and "(on v" not in page


def test_another_users_draft_is_a_404(client_for, editor, owner, workspace, versions):
    draft = Draft.objects.create(prompt=versions[0].prompt, user=owner, base_version=versions[0])
    response = client_for(editor).post(new_url(workspace), post_data([f"d{draft.pk}", f"v{versions[1].pk}"]))
    assert response.status_code == 404


def test_the_new_form_posted_twice_opens_the_first_comparison_and_runs_once(
    client_for, editor, workspace, versions, echo_maxim
):
    client = client_for(editor)
    data = post_data(keys(*versions[:2]), submit_token="f" * 32)
    first = client.post(new_url(workspace), data)
    second = client.post(new_url(workspace), data)  # double click, or back + resubmit
    assert first["Location"] == second["Location"]
    assert Comparison.objects.count() == 1 and Run.objects.count() == 2 and len(echo_maxim.sent) == 2


def test_the_detail_page_loads_the_batch_once_and_the_price_rules_once_per_batch(
    client_for, editor, workspace, versions, echo_maxim
):
    client = client_for(editor)
    with CaptureQueriesContext(connection) as created:
        comparison = make_comparison(client, workspace, versions, repeats="3")
    assert len([q for q in created if 'FROM "prompts_app_customprice"' in q["sql"]]) == 1  # not one per run
    assert [(r.batch, r.repeat) for r in Run.objects.filter(column=comparison.columns.first()).order_by("pk")] == [
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    with CaptureQueriesContext(connection) as shown:
        page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    assert len([q for q in shown if 'FROM "prompts_app_run"' in q["sql"]]) == 1
    assert page.count("Echo gpt-4o-mini: Where is my order?") >= 3


def test_run_again_starts_a_new_batch_once_even_if_posted_twice(client_for, editor, workspace, versions, echo_maxim):
    client = client_for(editor)
    comparison = make_comparison(client, workspace, versions[:2])
    url = reverse("comparison_run_again", args=[comparison.pk])
    client.post(url, {"repeats": "3", "batch": "2"})
    client.post(url, {"repeats": "3", "batch": "2"})  # the double click
    comparison.refresh_from_db()
    assert (comparison.batch, comparison.repeats) == (2, 3)
    assert Run.objects.filter(comparison=comparison).count() == 2 + 2 * 3
    assert len(echo_maxim.sent) == 8
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    assert "Distinct outputs" in page and "1 of 3" in page


def test_the_export_is_markdown_with_a_table_and_fenced_outputs(
    client_for, viewer, editor, workspace, versions, echo_maxim
):
    comparison = make_comparison(client_for(editor), workspace, versions[:2])
    response = client_for(viewer).get(reverse("comparison_export", args=[comparison.pk]))
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert text.startswith("# Tone check\n")
    assert "| 1 | Support reply v1 | gpt-4o | openai | 10/" in text
    assert "| success |" in text
    assert "```\nEcho gpt-4o-mini: Where is my order?\n```" in text


def test_the_list_shows_comparisons_of_my_workspaces_only(
    client_for, editor, outsider, workspace, versions, echo_maxim, make_workspace
):
    make_comparison(client_for(editor), workspace, versions[:2])
    assert "Tone check" in client_for(editor).get(reverse("comparison_list")).content.decode()
    make_workspace(owner=outsider, name="Theirs", maxim_id="ws-x")
    assert "Tone check" not in client_for(outsider).get(reverse("comparison_list")).content.decode()


# -- permissions -------------------------------------------------------------------------------


def comparison_urls(comparison) -> list[str]:
    column = comparison.columns.first()
    return [
        reverse("comparison_detail", args=[comparison.pk]),
        reverse("comparison_column", args=[comparison.pk, column.pk]),
        reverse("comparison_config", args=[comparison.pk]),
        reverse("comparison_diff", args=[comparison.pk]),
        reverse("comparison_export", args=[comparison.pk]),
    ]


def test_outsiders_get_404_on_every_comparison_url(client_for, editor, outsider, workspace, versions, echo_maxim):
    comparison = make_comparison(client_for(editor), workspace, versions[:2])
    client = client_for(outsider)
    for url in comparison_urls(comparison):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("comparison_run_again", args=[comparison.pk]), {"repeats": 1, "batch": 2}).status_code
        == 404
    )
    assert client.get(new_url(workspace)).status_code == 404
    assert client.post(new_url(workspace), post_data(keys(*versions[:2]))).status_code == 404
    assert client.post(reverse("comparison_inputs") + f"?workspace={workspace.pk}", {}).status_code == 404


def test_a_viewer_can_open_a_comparison_but_not_run_one(client_for, editor, viewer, workspace, versions, echo_maxim):
    comparison = make_comparison(client_for(editor), workspace, versions[:2])
    client = client_for(viewer)
    for url in comparison_urls(comparison):
        assert client.get(url).status_code == 200, url
    assert "Run again" not in client.get(comparison_urls(comparison)[0]).content.decode()
    response = client.post(reverse("comparison_run_again", args=[comparison.pk]), {"repeats": 1, "batch": 2})
    assert response.status_code == 403
    assert client.post(new_url(workspace), post_data(keys(*versions[:2]))).status_code == 403
    assert Run.objects.count() == 2


def test_anonymous_users_are_sent_to_login(client, workspace):
    response = client.get(reverse("comparison_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_config_and_baseline_fragments_swap_in(client_for, editor, workspace, versions, echo_maxim):
    comparison = make_comparison(client_for(editor), workspace, versions)
    columns = list(comparison.columns.all())
    config = client_for(editor).get(reverse("comparison_config", args=[comparison.pk])).content.decode()
    assert config.startswith('<section id="compare-config"') and 'class="different" data-field="model"' in config
    # The baseline is a column number, as in the page URL.
    diff = client_for(editor).get(reverse("comparison_diff", args=[comparison.pk]), {"baseline": 2})
    html = diff.content.decode()
    assert html.startswith('<section id="compare-diff"')
    assert "Echo <del>gpt-4o-mini:</del><ins>gpt-4o:</ins> Where" in html
    assert f'data-column="{columns[1].pk}"' not in html  # the baseline is not diffed against itself
    assert "same output" not in html


def test_new_without_a_workspace_uses_the_only_one_or_sends_to_the_list(
    client_for, editor, workspace, make_workspace, versions
):
    client = client_for(editor)
    assert f'value="v{versions[0].pk}"' in client.get(reverse("comparison_new")).content.decode()
    make_workspace(owner=editor, name="Second", maxim_id="ws-2")
    response = client.get(reverse("comparison_new"))
    assert response.status_code == 302 and response["Location"] == reverse("comparison_list")
    page = client.get(reverse("comparison_list")).content.decode()
    assert "New comparison in Acme" in page and "New comparison in Second" in page


def test_a_viewer_sees_no_new_comparison_button(client_for, viewer, workspace):
    assert "New comparison" not in client_for(viewer).get(reverse("comparison_list")).content.decode()


def test_the_api_key_appears_in_no_comparison_page_or_export(client_for, editor, workspace, versions, echo_maxim):
    client = client_for(editor)
    comparison = make_comparison(client, workspace, versions[:2])
    pages = [client.get(url).content.decode() for url in comparison_urls(comparison)]
    pages.append(client.get(reverse("comparison_list")).content.decode())
    assert all("test-key-1234" not in page for page in pages)


def test_a_link_can_pick_the_columns_and_the_input_starts_shared(workspace, editor, client_for, prompt):
    first, second = make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")
    response = client_for(editor).get(
        f"/compare/new/?workspace={workspace.pk}&columns=v{first.pk}&columns=v{second.pk}"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f'name="columns" value="v{first.pk}"' in page and f'name="columns" value="v{second.pk}"' in page
    assert 'name="var__company"' in page  # the shared input asks for the columns' variables
    assert "errorlist" not in page  # nothing is reported missing before the user submits


def test_the_prompt_page_links_its_two_latest_versions_side_by_side(workspace, editor, client_for, prompt):
    first, second = make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")
    page = client_for(editor).get(f"/prompts/{prompt.pk}/").content.decode()
    assert f"columns=v{first.pk}&amp;columns=v{second.pk}" in page


def test_the_configuration_numbers_its_columns_so_a_version_compared_twice_is_told_apart(
    client_for, editor, workspace, versions, echo_maxim
):
    comparison = make_comparison(client_for(editor), workspace, [versions[0], versions[0]])
    page = client_for(editor).get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    head = page.split('<table class="data config"')[1].split("</thead>")[0]
    label = comparison.columns.first().version.prompt.name
    assert f'<th class="as-typed">1. {label}' in head and f'<th class="as-typed">2. {label}' in head


def test_run_again_with_a_batch_number_past_the_database_column_is_refused_not_a_500(
    client_for, editor, workspace, versions, echo_maxim
):
    comparison = make_comparison(client_for(editor), workspace, versions[:2])
    url = reverse("comparison_run_again", args=[comparison.pk])
    for batch in (2**63, 2**31):
        assert client_for(editor).post(url, {"repeats": 1, "batch": batch}).status_code in (200, 302)
    comparison.refresh_from_db()
    assert comparison.batch == 1  # nothing started


def test_each_run_records_only_the_variables_its_version_uses(client_for, editor, workspace, versions, echo_maxim):
    # Re-trial: every run of a comparison held every column's variables, so searching history
    # for one version's input found the runs of the others too.
    response = client_for(editor).post(new_url(workspace), post_data(keys(versions[0], versions[2])))
    assert response.status_code == 302
    recorded = {run.version_id: run.input["variables"] for run in Run.objects.all()}
    used = {v.pk: set(v.variables()) for v in (versions[0], versions[2])}
    assert used[versions[2].pk] == {"company"} and used[versions[0].pk] > {"company"}
    assert {pk: set(variables) for pk, variables in recorded.items()} == used
    assert Comparison.objects.get().input["variables"] == {"company": "Acme", "name": "Ada"}  # the form keeps both
