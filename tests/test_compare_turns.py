"""Several turns in a comparison's input: adding and removing turns (with htmx and without)
keeps everything typed, every turn is sent after the version's messages, and the detail
page and the Markdown export show them all. Maxim faked by respx (echo_maxim)."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.urls import reverse

from prompts_app.forms.compare import CompareForm
from prompts_app.models import Comparison, Run
from tests.conftest import make_version, post_data, turn_data

pytestmark = pytest.mark.usefixtures("inline_runs")

THREE_TURNS = ("Where is my order?", "It left on Monday.", "When will it arrive?")


@pytest.fixture
def versions(prompt):
    return [make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")]


def new_url(workspace) -> str:
    return reverse("comparison_new") + f"?workspace={workspace.pk}"


def inputs_url(workspace) -> str:
    return reverse("comparison_inputs") + f"?workspace={workspace.pk}"


def keys(*versions) -> list[str]:
    return [f"v{v.pk}" for v in versions]


def per_column_data(a, b, turns_a: tuple[str, ...], turns_b: tuple[str, ...], **extra) -> dict:
    return {
        "columns": keys(a, b),
        "repeats": "1",
        "title": "Per column",
        **turn_data(*turns_a, prefix=f"turn__v{a.pk}"),
        **turn_data(*turns_b, prefix=f"turn__v{b.pk}"),
        f"var__v{a.pk}__company": "A Co",
        f"var__v{a.pk}__name": "Ann",
        f"var__v{b.pk}__company": "B Co",
        f"var__v{b.pk}__name": "Bob",
        **extra,
    }


def rendered_turns(form, prefix: str) -> list[dict[str, str]]:
    """The turns a re-drawn compare form shows for one input."""
    group = next(g for g in form.input_groups() if g.prefix == prefix)
    return [{"role": f["role"].value(), "content": f["content"].value()} for f in group.turns]


# -- adding and removing turns ---------------------------------------------------------------------


def test_adding_a_turn_redraws_the_inputs_with_everything_kept(client_for, editor, workspace, versions):
    data = post_data(keys(*versions), message="Where is my order?", action="turn:add-turn")
    response = client_for(editor).post(inputs_url(workspace), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="turn-TOTAL_FORMS" value="2"' in page
    assert "Where is my order?" in page and 'value="Acme"' in page and 'value="Ada"' in page
    assert '<option value="assistant" selected>' in page  # the new turn answers the user's
    assert 'name="turn-1-content"' in page and "errorlist" not in page
    assert 'value="turn:remove-turn-1"' in page


def test_the_new_turns_alternate_user_and_assistant(client_for, editor, workspace, versions):
    data = post_data(keys(*versions), message="Hi")
    data.update(turn_data("Hi", "Hello"))
    form = CompareForm(_querydict(data), workspace=workspace, user=editor, refresh=True, action="turn:add-turn")
    assert [t["role"] for t in rendered_turns(form, "turn")] == ["user", "assistant", "user"]


def test_removing_a_turn_keeps_the_others_and_never_the_last_one(client_for, editor, workspace, versions):
    client = client_for(editor)
    data = {**post_data(keys(*versions)), **turn_data(*THREE_TURNS), "action": "turn:remove-turn-1"}
    page = client.post(inputs_url(workspace), data).content.decode()
    assert 'name="turn-TOTAL_FORMS" value="2"' in page
    assert THREE_TURNS[0] in page and THREE_TURNS[2] in page and THREE_TURNS[1] not in page

    only = {**post_data(keys(*versions), message="Keep me"), "action": "turn:remove-turn-0"}
    page = client.post(inputs_url(workspace), only).content.decode()
    assert 'name="turn-TOTAL_FORMS" value="1"' in page and "Keep me" in page
    assert "remove-turn-0" not in page  # a single turn has no Remove button


def test_without_javascript_add_turn_redraws_the_whole_page_with_everything_kept(
    client_for, editor, workspace, versions, echo_maxim
):
    data = {**post_data(keys(*versions)), **turn_data("Where is my order?", "It shipped."), "action": "turn:add-turn"}
    response = client_for(editor).post(new_url(workspace), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="turn-TOTAL_FORMS" value="3"' in page
    assert "Where is my order?" in page and "It shipped." in page
    assert 'value="Acme"' in page and 'value="Tone check"' in page
    assert all(f'name="columns" value="{key}"' in page for key in keys(*versions))
    assert "errorlist" not in page
    assert Comparison.objects.count() == 0 and not echo_maxim.sent


def test_enter_in_a_one_line_field_runs_rather_than_adding_a_turn(client_for, editor, workspace, versions):
    page = client_for(editor).get(new_url(workspace) + "&" + "&".join(f"columns={k}" for k in keys(*versions)))
    html = page.content.decode()
    # The browser submits a form's first submit button on Enter: it must be the run button.
    assert html.index('class="default-submit"') < html.index(':add-turn"')


def test_per_column_add_and_remove_touch_one_column_and_keep_every_other_value(client_for, editor, workspace, versions):
    a, b = versions
    client = client_for(editor)
    data = per_column_data(a, b, ("A first", "A answer", "A again"), ("B only",), action=f"turn__v{b.pk}:add-turn")
    page = client.post(inputs_url(workspace), data).content.decode()
    # With htmx only that column's input is redrawn: another one may be being typed in.
    assert page.lstrip().startswith(f'<div class="input-group" id="input-group-turn__v{b.pk}"')
    assert f'name="turn__v{b.pk}-TOTAL_FORMS" value="2"' in page
    assert f"turn__v{a.pk}" not in page
    assert all(text in page for text in ("B only", "B Co", "Bob"))

    data["action"] = f"turn__v{a.pk}:remove-turn-0"
    page = client.post(new_url(workspace), data).content.decode()  # without JavaScript this time
    assert f'name="turn__v{a.pk}-TOTAL_FORMS" value="2"' in page
    assert f'name="turn__v{b.pk}-TOTAL_FORMS" value="1"' in page
    assert "A first" not in page and "A answer" in page and "A again" in page and "B only" in page
    assert 'value="Per column"' in page and Comparison.objects.count() == 0


def test_unticking_same_input_starts_each_column_from_the_shared_turns(client_for, editor, workspace, versions):
    a, b = versions
    data = {**post_data(keys(*versions)), **turn_data("Shared question", "Shared answer")}
    del data["shared_input"]
    page = client_for(editor).post(inputs_url(workspace), data).content.decode()
    for version in (a, b):
        assert f'name="turn__v{version.pk}-TOTAL_FORMS" value="2"' in page
    assert page.count("Shared answer") == 2


# -- validation -------------------------------------------------------------------------------------


def test_empty_turns_are_rejected_with_a_message_next_to_the_turn(client_for, editor, workspace, prompt, echo_maxim):
    versions = [make_version(prompt, n, messages=[]) for n in (1, 2)]
    data = {**post_data(keys(*versions)), **turn_data("  ", "")}
    response = client_for(editor).post(new_url(workspace), data)
    assert response.status_code == 200
    page = response.content.decode()
    turn = page[page.index('name="turn-0-content"') : page.index('name="turn-1-content"')]
    assert "Type the message to send: this version&#x27;s own messages are empty" in turn
    assert Comparison.objects.count() == 0 and not echo_maxim.sent


def test_only_the_column_without_a_message_gets_the_error(client_for, editor, workspace, prompt, echo_maxim):
    a, b = [make_version(prompt, n, messages=[]) for n in (1, 2)]
    page = client_for(editor).post(new_url(workspace), per_column_data(a, b, ("Fine",), ("", " "))).content.decode()
    assert page.count("Type the message to send: this version&#x27;s own messages are empty") == 1
    assert page.index(f'name="turn__v{b.pk}-0-content"') < page.index("Type the message to send")
    assert "Fine" in page and Comparison.objects.count() == 0


def test_a_turn_with_an_unknown_role_is_a_field_error(client_for, editor, workspace, versions, echo_maxim):
    data = {**post_data(keys(*versions)), "turn-0-role": "system"}
    response = client_for(editor).post(new_url(workspace), data)
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert Comparison.objects.count() == 0


# -- running ------------------------------------------------------------------------------------------


def test_every_turn_is_sent_after_the_versions_messages(client_for, editor, workspace, versions, echo_maxim):
    data = {**post_data(keys(*versions)), **turn_data(THREE_TURNS[0], "", *THREE_TURNS[1:])}
    data["turn-1-role"] = "user"  # an empty turn in the middle is skipped, as on a version's run form
    data["turn-2-role"], data["turn-3-role"] = "assistant", "user"
    assert client_for(editor).post(new_url(workspace), data).status_code == 302

    comparison = Comparison.objects.get()
    assert comparison.input["turns"] == [
        {"role": "user", "content": THREE_TURNS[0]},
        {"role": "assistant", "content": THREE_TURNS[1]},
        {"role": "user", "content": THREE_TURNS[2]},
    ]
    assert len(echo_maxim.sent) == 2  # each body was checked against Maxim's spec by echo_maxim
    for body in echo_maxim.sent:
        assert body["messages"] == [
            {"role": "system", "content": "You answer for Acme."},
            {"role": "user", "content": "Hello, I am Ada."},
            {"role": "user", "content": THREE_TURNS[0]},
            {"role": "assistant", "content": THREE_TURNS[1]},
            {"role": "user", "content": THREE_TURNS[2]},
        ]


def test_each_column_sends_its_own_turns(client_for, editor, workspace, versions, echo_maxim):
    a, b = versions
    data = per_column_data(a, b, ("A asks", "A hears", "A asks again"), ("B asks",))
    assert client_for(editor).post(new_url(workspace), data).status_code == 302
    by_version = {body["versionId"]: body["messages"] for body in echo_maxim.sent}
    assert [m["content"] for m in by_version[a.maxim_id][2:]] == ["A asks", "A hears", "A asks again"]
    assert [m["role"] for m in by_version[a.maxim_id][2:]] == ["user", "assistant", "user"]
    assert by_version[b.maxim_id][1:] == [
        {"role": "user", "content": "Hello, I am Bob."},
        {"role": "user", "content": "B asks"},
    ]


def test_an_input_ending_with_an_assistant_turn_is_allowed(client_for, editor, workspace, versions, echo_maxim):
    # Maxim decides what to do with it; the dashboard does not block it.
    data = {**post_data(keys(*versions)), **turn_data("Hi", "Hello! How can I help?")}
    assert client_for(editor).post(new_url(workspace), data).status_code == 302
    assert all(body["messages"][-1]["role"] == "assistant" for body in echo_maxim.sent)


def test_run_again_sends_the_stored_turns_unchanged(client_for, editor, workspace, versions, echo_maxim):
    client = client_for(editor)
    client.post(new_url(workspace), {**post_data(keys(*versions)), **turn_data(*THREE_TURNS)})
    comparison = Comparison.objects.get()
    stored = comparison.input
    first = [body["messages"] for body in echo_maxim.sent]
    client.post(reverse("comparison_run_again", args=[comparison.pk]), {"repeats": "1", "batch": "2"})
    comparison.refresh_from_db()
    assert comparison.batch == 2 and comparison.input == stored
    assert [body["messages"] for body in echo_maxim.sent[2:]] == first
    assert Run.objects.filter(comparison=comparison).count() == 4


# -- showing the input -----------------------------------------------------------------------------


def test_the_detail_page_and_the_export_show_every_turn_with_its_role(
    client_for, editor, workspace, versions, echo_maxim
):
    client = client_for(editor)
    client.post(new_url(workspace), {**post_data(keys(*versions)), **turn_data(*THREE_TURNS)})
    comparison = Comparison.objects.get()
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    panel = page[page.index('class="panel compare-input"') : page.index('class="compare-columns"')]
    for role, text in zip(("user", "assistant", "user"), THREE_TURNS):
        assert f'<span class="turn-role">{role}:</span><pre>{text}</pre>' in panel

    text = client.get(reverse("comparison_export", args=[comparison.pk])).content.decode()
    assert (
        "Input:\n\n- user: Where is my order?\n- assistant: It left on Monday.\n- user: When will it arrive?\n\n"
        "Variables: company=Acme, name=Ada\n"
    ) in text


def test_per_column_turns_show_in_each_card_and_in_the_export(client_for, editor, workspace, versions, echo_maxim):
    a, b = versions
    client = client_for(editor)
    client.post(new_url(workspace), per_column_data(a, b, ("A asks", "A hears"), ("B asks",)))
    comparison = Comparison.objects.get()
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    assert '<span class="turn-role">assistant:</span><pre>A hears</pre>' in page
    assert '<span class="turn-role">user:</span><pre>B asks</pre>' in page
    text = client.get(reverse("comparison_export", args=[comparison.pk])).content.decode()
    assert "- user: A asks\n- assistant: A hears\n" in text and "- user: B asks\n" in text
    config = client.get(reverse("comparison_config", args=[comparison.pk])).content.decode()
    row = config[config.index('data-field="input turn 2"') : config.index('data-field="input variables"')]
    assert '<tr class="different" data-field="input turn 1">' in config
    assert "assistant: A hears" in row and "—" in row


def test_a_shared_input_adds_no_input_rows_to_the_configuration(client_for, editor, workspace, versions, echo_maxim):
    client = client_for(editor)
    client.post(new_url(workspace), {**post_data(keys(*versions)), **turn_data(*THREE_TURNS)})
    config = client.get(reverse("comparison_config", args=[Comparison.objects.get().pk])).content.decode()
    assert "input turn" not in config  # the same for every column: shown once, above the columns


def _querydict(data: dict):
    query = QueryDict(mutable=True)
    for key, value in data.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    return query
