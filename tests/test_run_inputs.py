"""What a run sends: variables alone may be enough, the preview says what will be sent, and
the size limits apply to the filled-in input everywhere (run, estimate, compare, run again),
so a variable used a thousand times is refused before it is expanded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app import pricing
from prompts_app.models import Comparison, Prompt, PromptVersion, Role, Run
from prompts_app.run_input import (
    MAX_BODY_CHARS,
    InputTooLarge,
    fill_variables,
    filled_length,
    filled_prefix,
    input_problem,
)
from prompts_app.services.runs import start_run
from tests.conftest import make_version, post_data, run_form_data, run_url, sent_bodies

HTMX = {"HX-Request": "true"}
BOMB_VALUE = "y" * 10_000
BOMB_TEXT = "{{v}}" * 1_000  # 10,000 characters of value x 1,000 = 10 M characters once filled in


@pytest.fixture
def complaint_version(prompt):
    return PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="version-c",
        number=2,
        provider="openai",
        model_name="gpt-4o",
        messages=[
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Customer says: {{complaint}}"},
        ],
    )


@pytest.fixture
def bomb_version(prompt):
    return PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="version-bomb",
        number=3,
        provider="openai",
        model_name="gpt-4o",
        messages=[{"role": "user", "content": BOMB_TEXT}],
    )


def run_data(**extra) -> dict:
    """The run form with an empty turn: the version's own messages carry the input."""
    return run_form_data(**{"turn-0-content": "", **extra})


def preview(client, version, **extra) -> str:
    response = client.post(reverse("version_estimate", args=[version.pk]), run_data(**extra), headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


# -- variables alone (issue 8.4) ------------------------------------------------------------


def test_variables_alone_run_a_version_whose_messages_hold_them(client_for, editor, complaint_version, maxim):
    response = client_for(editor).post(
        run_url(complaint_version), run_data(var__complaint="My parcel is late."), headers=HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hi Ann, how can I help?" in html
    assert "Nothing would be sent" not in html and "Type a message" not in html
    [body] = sent_bodies(maxim)
    assert body["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Customer says: My parcel is late."},
    ]
    assert Run.objects.get().input["turns"] == []


def test_a_turn_is_still_sent_after_the_versions_messages(client_for, editor, complaint_version, maxim):
    client_for(editor).post(
        run_url(complaint_version), run_data(**{"var__complaint": "Late.", "turn-0-content": "And {{complaint}}"})
    )
    [body] = sent_bodies(maxim)
    assert body["messages"][-1] == {"role": "user", "content": "And Late."}


def test_a_missing_variable_is_named_and_nothing_is_sent(client_for, editor, complaint_version, maxim):
    response = client_for(editor).post(run_url(complaint_version), run_data(var__complaint="  "), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fill in {{complaint}}: this version&#x27;s messages use it." in html
    assert "Fill in a value for {{complaint}}." in html
    assert maxim.calls.call_count == 0 and Run.objects.count() == 0


def test_the_preview_shows_the_messages_with_the_variables_filled_in(client_for, editor, complaint_version):
    html = preview(
        client_for(editor),
        complaint_version,
        var__complaint="My parcel is late.",
        **{"turn-0-content": "Order {{complaint}}"},
    )
    assert "What will be sent" in html
    assert "Customer says: My parcel is late." in html
    assert "Order My parcel is late." in html
    assert "input tokens" in html


def test_the_preview_names_the_missing_variables(client_for, viewer, complaint_version):
    html = preview(client_for(viewer), complaint_version)
    assert "Missing 1 value:" in html and "{{complaint}}" in html


def test_the_preview_of_a_long_message_shows_its_start_and_counts_the_rest(client_for, editor, complaint_version):
    html = preview(client_for(editor), complaint_version, var__complaint="z" * 50_000)
    assert "z" * 1_000 in html and "z" * 3_000 not in html
    assert "more characters" in html


def test_the_run_form_posts_into_its_own_outcome_area_and_previews_as_the_user_types(
    client_for, editor, complaint_version
):
    html = client_for(editor).get(run_url(complaint_version)).content.decode()
    form = html.split('id="run-form"')[1].split(">")[0]
    assert 'hx-target="#run-outcome"' in form and 'hx-sync="this:drop"' in form
    assert 'id="run-preview"' in html and "input delay:500ms from:#run-form" in html
    assert 'role="region" aria-label="Run result"' in html


# -- the error area is replaced on every response (issue 8.11) ---------------------------


def test_a_run_after_a_refused_one_replaces_the_error(client_for, editor, complaint_version, maxim):
    client = client_for(editor)
    refused = client.post(run_url(complaint_version), run_data(var__complaint=""), headers=HTMX).content.decode()
    outcome = refused.split('id="run-outcome"')[1]
    assert 'role="alert"' in outcome.split('id="run-result"')[0]
    ok = client.post(run_url(complaint_version), run_data(var__complaint="Late."), headers=HTMX).content.decode()
    assert ok.lstrip().startswith('<div id="run-outcome"') or '<div id="run-outcome"' in ok.split("<article")[0]
    assert "Fill in" not in ok and "errorlist" not in ok
    assert 'data-clear-errors="run-form"' in ok  # field errors left from the refusal go too (static/js/app.js)
    assert "Hi Ann, how can I help?" in ok


# -- idempotency keys stay with their version (issue 9) ------------------------------------


def test_a_key_used_on_another_workspaces_version_does_not_return_that_run(
    client_for, editor, owner, complaint_version, make_workspace, maxim
):
    other_ws = make_workspace(owner=owner, name="Other", maxim_id="ws-2", members=[(editor, Role.EDITOR)])
    other_prompt = Prompt.objects.create(workspace=other_ws, maxim_id="prompt-9", name="Elsewhere")
    other = PromptVersion.objects.create(
        prompt=other_prompt,
        maxim_id="v-9",
        number=1,
        model_name="gpt-4o",
        messages=[{"role": "user", "content": "Other {{complaint}}"}],
    )
    client = client_for(editor)
    client.post(run_url(other), run_data(idempotency_key="same", var__complaint="A"), headers=HTMX)
    html = client.post(
        run_url(complaint_version), run_data(idempotency_key="same", var__complaint="B"), headers=HTMX
    ).content.decode()
    mine = Run.objects.get(version=complaint_version)
    assert f'href="/runs/{mine.pk}/"' in html
    assert Run.objects.count() == 2 and maxim.calls.call_count == 2
    # The same key on the same version is still the same run, sent once.
    client.post(run_url(complaint_version), run_data(idempotency_key="same", var__complaint="B"), headers=HTMX)
    assert Run.objects.count() == 2 and maxim.calls.call_count == 2


# -- usage that never came back (issue 8.9) ------------------------------------------------


def test_a_failed_run_shows_a_dash_not_zero_tokens(client_for, editor, version):
    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=editor,
        status=Run.Status.FAILED,
        error="Maxim rejected the API key",
        model_name="gpt-4o",
        provider="openai",
        input={},
        request_body={"messages": []},
    )
    client = client_for(editor)
    fragment = client.get(reverse("run_result", args=[run.pk])).content.decode()
    assert "0 tokens" not in fragment and "— tokens" in fragment
    assert 'role="alert"' in fragment
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    usage = page.split('aria-label="Usage and cost"')[1].split("</table>")[0]
    assert ">0<" not in usage and usage.count("—") >= 3


# -- size limits on the filled-in input (issue 9.4) ----------------------------------------


def test_lengths_are_computed_without_expanding():
    variables = {"v": BOMB_VALUE, "w": ""}
    assert filled_length(BOMB_TEXT, variables) == 10_000_000
    assert filled_length("a {{w}} {{unknown}} b", variables) == len(fill_variables("a {{w}} {{unknown}} b", variables))
    assert filled_prefix(BOMB_TEXT, variables, 25) == "y" * 25
    assert filled_prefix("a {{ w }}b{{x}}", variables, 100) == fill_variables("a {{ w }}b{{x}}", variables)


def test_a_variable_bomb_is_refused_by_the_run_form_with_the_input_kept(client_for, editor, bomb_version, maxim):
    response = client_for(editor).post(run_url(bomb_version), run_data(var__v=BOMB_VALUE), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Message 1 (user) would be 10,000,000 characters long once the variables are filled in" in html
    assert "the limit is 100,000 characters per message" in html
    assert BOMB_VALUE in html  # kept in its field
    assert maxim.calls.call_count == 0 and Run.objects.count() == 0


def test_many_messages_under_the_per_message_limit_are_refused_for_the_total(client_for, editor, prompt, maxim):
    version = PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="v-many",
        number=4,
        model_name="gpt-4o",
        messages=[{"role": "user", "content": "{{v}} {{v}}"}] * 5,  # 5 x 180,001 characters
    )
    response = client_for(editor).post(run_url(version), run_data(var__v="q" * 90_000), headers=HTMX)
    html = response.content.decode()
    assert f"the limit is {MAX_BODY_CHARS:,} characters" not in html  # one message is already too long
    assert "Message 1 (user) would be 180,001 characters long" in html
    response = client_for(editor).post(run_url(version), run_data(var__v="q" * 45_000), headers=HTMX)
    total = f"would be 450,005 characters long in all once the variables are filled in; the limit is {MAX_BODY_CHARS:,}"
    assert total in response.content.decode()
    assert maxim.calls.call_count == 0


def test_a_variable_bomb_is_not_estimated_nor_tokenised(client_for, viewer, bomb_version, monkeypatch):
    counted = []
    monkeypatch.setattr(pricing, "_count", lambda text, encoder: counted.append(text) or 0)
    html = preview(client_for(viewer), bomb_version, var__v=BOMB_VALUE)
    assert "would be 10,000,000 characters long" in html and 'role="alert"' in html
    assert "input tokens" not in html
    assert counted == []


def test_the_estimate_tokenises_a_bounded_sample_of_a_large_input(monkeypatch):
    real = pricing._count
    counted: list[int] = []
    monkeypatch.setattr(pricing, "_count", lambda text, encoder: counted.append(len(text)) or real(text, encoder))
    messages = [{"role": "user", "content": "hello world " * 30_000}] * 3  # 1,080,000 characters
    tokens = pricing.estimate_input_tokens(messages, model="gpt-4o")
    assert sum(counted) <= pricing.ESTIMATE_SAMPLE_CHARS
    exact_per_message = real("hello world " * 3_000, pricing._encoder("o200k_base")) * 10
    assert abs(tokens - 3 * (exact_per_message + pricing.MESSAGE_OVERHEAD_TOKENS)) < 0.02 * tokens


def test_the_run_service_refuses_a_bomb_that_skipped_the_form(editor, bomb_version):
    with pytest.raises(InputTooLarge, match="10,000,000"):
        start_run(version=bomb_version, inputs={"turns": [], "variables": {"v": BOMB_VALUE}}, user=editor)
    assert Run.objects.count() == 0


def test_a_typed_value_over_the_limit_is_refused_even_if_unused():
    problem = input_problem([], {"turns": [], "variables": {"unused": "x" * 1_000_000}})
    assert problem == "The value of {{unused}} is 1,000,000 characters long; the limit is 100,000 characters."


def test_run_again_refuses_a_stored_body_over_the_limits(client_for, editor, version, maxim):
    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=editor,
        status=Run.Status.SUCCESS,
        model_name="gpt-4o",
        provider="openai",
        input={},
        request_body={"messages": [{"role": "user", "content": "x" * 150_000}], "modelName": "gpt-4o"},
    )
    response = client_for(editor).post(reverse("run_again", args=[run.pk]), {"idempotency_key": "again"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Message 1 (user) would be 150,000 characters long" in html and 'role="alert"' in html
    assert Run.objects.count() == 1 and maxim.calls.call_count == 0


@pytest.mark.usefixtures("inline_runs")
class TestTheComparisonForm:
    @pytest.fixture
    def columns(self, prompt):
        return [
            make_version(prompt, 7, messages=[{"role": "user", "content": BOMB_TEXT.replace("{{v}}", "{{name}}")}]),
            make_version(prompt, 8),
        ]

    def post(self, client, workspace, versions, **extra):
        url = reverse("comparison_new") + f"?workspace={workspace.pk}"
        return client.post(url, post_data([f"v{v.pk}" for v in versions], **extra))

    def test_a_variable_bomb_is_refused_with_the_input_kept(self, client_for, editor, workspace, columns, echo_maxim):
        response = self.post(client_for(editor), workspace, columns, var__name=BOMB_VALUE, repeats="10")
        assert response.status_code == 200
        html = response.content.decode()
        assert "would be 10,000,000 characters long once the variables are filled in" in html
        assert BOMB_VALUE in html
        assert Comparison.objects.count() == 0 and Run.objects.count() == 0 and not echo_maxim.sent

    @pytest.mark.parametrize(
        ("field", "size", "message"),
        [
            ("turn-0-content", 800_000, "Turn 1 is 800,000 characters long; the limit is 100,000 characters."),
            ("var__company", 1_000_000, "The value of {{company}} is 1,000,000 characters long"),
        ],
    )
    def test_a_huge_turn_or_value_is_refused(
        self, client_for, editor, workspace, prompt, echo_maxim, field, size, message
    ):
        versions = [make_version(prompt, 1), make_version(prompt, 2)]
        response = self.post(client_for(editor), workspace, versions, **{field: "k" * size})
        assert response.status_code == 200
        assert message in response.content.decode()
        assert Comparison.objects.count() == 0 and not echo_maxim.sent
