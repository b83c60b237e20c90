"""The run form, the run page and "Run again", with Maxim faked by respx at the HTTP boundary."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx
from django.urls import reverse
from django.utils import timezone

from prompts_app.forms.runs import MAX_INPUT_CHARS
from prompts_app.models import Run
from tests.conftest import RUN_URL, run_form_data, run_url, sent_bodies


def test_run_page_shows_a_turn_and_a_field_per_variable(client_for, editor, version):
    response = client_for(editor).get(run_url(version))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="turn-0-content"' in html
    assert 'name="var__company"' in html and 'name="var__name"' in html
    assert 'name="idempotency_key"' in html
    assert "data-submit-shortcut" in html
    assert "disabled" not in html.split('class="run-fields"')[1][:20]


def test_viewer_sees_the_form_disabled(client_for, viewer, version):
    html = client_for(viewer).get(run_url(version)).content.decode()
    assert 'class="run-fields" disabled' in html
    assert "needs the editor role" in html


def test_viewer_gets_403_when_posting_a_run_and_nothing_is_sent(client_for, viewer, version, maxim):
    response = client_for(viewer).post(run_url(version), run_form_data())
    assert response.status_code == 403
    assert maxim.calls.call_count == 0
    assert Run.objects.count() == 0


def test_viewer_gets_403_on_run_again(client_for, viewer, editor, version, maxim):
    client_for(editor).post(run_url(version), run_form_data())
    run = Run.objects.get()
    response = client_for(viewer).post(reverse("run_again", args=[run.pk]), {"idempotency_key": "k"})
    assert response.status_code == 403
    assert maxim.calls.call_count == 1


def test_outsider_gets_404_on_every_run_url(client_for, editor, outsider, version, maxim):
    client_for(editor).post(run_url(version), run_form_data())
    run = Run.objects.get()
    client = client_for(outsider)
    assert client.get(run_url(version)).status_code == 404
    assert client.post(run_url(version), run_form_data(idempotency_key="other")).status_code == 404
    assert client.post(reverse("version_estimate", args=[version.pk]), run_form_data()).status_code == 404
    assert client.get(reverse("run_detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("run_result", args=[run.pk])).status_code == 404
    assert client.post(reverse("run_again", args=[run.pk]), {"idempotency_key": "x"}).status_code == 404
    assert maxim.calls.call_count == 1


def test_anonymous_user_is_sent_to_login(client, version):
    response = client.get(run_url(version))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_run_without_js_redirects_to_its_page(client_for, editor, version, maxim):
    response = client_for(editor).post(run_url(version), run_form_data())
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("run_detail", args=[run.pk])
    assert run.status == Run.Status.SUCCESS and run.user == editor
    assert run.output_text == "Hi Ann, how can I help?"
    [body] = sent_bodies(maxim)
    assert body["messages"][-1] == {"role": "user", "content": "Where is my order?"}


def test_a_run_with_htmx_returns_the_result_and_a_fresh_key(client_for, editor, version, maxim):
    response = client_for(editor).post(run_url(version), run_form_data(), headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="run-result"' in html
    assert "Hi Ann, how can I help?" in html
    assert "27</strong> tokens" in html
    # The next run from the same form must be a new run, so the key is swapped out of band.
    assert 'hx-swap-oob="true"' in html and 'value="key-1"' not in html


def test_the_same_submission_posted_twice_runs_once(client_for, editor, version, maxim):
    client = client_for(editor)
    first = client.post(run_url(version), run_form_data(idempotency_key="double-click"))
    second = client.post(run_url(version), run_form_data(idempotency_key="double-click"))
    assert maxim.calls.call_count == 1
    assert Run.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_empty_input_is_an_error_that_keeps_what_was_typed(client_for, editor, version, maxim):
    version.messages = [{"role": "system", "content": "  "}]  # nothing of its own to send
    version.save()
    response = client_for(editor).post(
        run_url(version), run_form_data(**{"turn-0-content": "   ", "turn-0-role": "assistant"})
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing would be sent" in html
    assert '<option value="assistant" selected>' in html
    assert maxim.calls.call_count == 0 and Run.objects.count() == 0


def test_a_missing_variable_is_named_in_the_error(client_for, editor, version, maxim):
    response = client_for(editor).post(run_url(version), run_form_data(var__name=""))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Fill in a value for {{name}}." in html
    assert "Where is my order?" in html
    assert maxim.calls.call_count == 0


def test_oversized_input_names_the_limit(client_for, editor, version, maxim):
    response = client_for(editor).post(
        run_url(version), run_form_data(**{"turn-0-content": "x" * (MAX_INPUT_CHARS + 1)})
    )
    assert response.status_code == 200
    assert f"the limit is {MAX_INPUT_CHARS:,} characters" in response.content.decode()
    assert maxim.calls.call_count == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("extra_parameters", "{top_p: 1}", "Not valid JSON"),
        ("extra_parameters", "[1, 2]", "Must be a JSON object"),
        ("extra_parameters", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "Nested too deeply"),
        ("extra_parameters", '{"a": ' + "[" * 65 + "]" * 65 + "}", "Nested too deeply"),
        ("temperature", "hot", "Enter a number."),
        ("max_tokens", "0", "greater than or equal to 1"),
        ("provider", "skynet", "Select a valid choice"),
        ("turn-TOTAL_FORMS", "nope", "ManagementForm data is missing or has been tampered with"),
    ],
)
def test_bad_overrides_are_errors_next_to_the_field(client_for, editor, version, maxim, field, value, message):
    response = client_for(editor).post(run_url(version), run_form_data(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert maxim.calls.call_count == 0


def test_an_invalid_htmx_post_retargets_the_whole_panel(client_for, editor, version, maxim):
    response = client_for(editor).post(run_url(version), run_form_data(var__name=""), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#run-panel"
    assert response["HX-Reswap"] == "outerHTML"
    assert response.content.decode().count('id="run-panel"') == 1


def test_adding_a_turn_keeps_everything_typed(client_for, editor, version, maxim):
    data = run_form_data(action="add-turn", var__company="Typed Co", extra_parameters='{"top_p": 0.5}')
    html = client_for(editor).post(run_url(version), data).content.decode()
    assert 'name="turn-1-content"' in html
    assert '<option value="assistant" selected>' in html.split('name="turn-1-role"')[1].split("</select>")[0]
    assert "Where is my order?" in html and "Typed Co" in html and "top_p" in html
    assert "Fill in a value" not in html  # editing is not running: no errors yet
    assert maxim.calls.call_count == 0


def test_removing_a_turn_keeps_the_others(client_for, editor, version, maxim):
    data = run_form_data(
        **{
            "action": "remove-turn-0",
            "turn-TOTAL_FORMS": "2",
            "turn-1-role": "assistant",
            "turn-1-content": "Second turn stays",
        }
    )
    html = client_for(editor).post(run_url(version), data).content.decode()
    assert "Second turn stays" in html and "Where is my order?" not in html
    assert 'name="turn-1-content"' not in html


def test_run_page_shows_output_usage_cost_and_the_sent_body(client_for, editor, version, maxim):
    client = client_for(editor)
    client.post(run_url(version), run_form_data())
    run = Run.objects.get()
    html = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Hi Ann, how can I help?" in html
    assert "Raw output (JSON, as returned)" in html
    assert "&quot;versionId&quot;: &quot;version-1&quot;" in html  # the body, pretty-printed
    assert "Hello, I am Ann." in html
    assert run.cost_nano and "genai-prices" in html
    assert "test-key-1234" not in html
    assert "Run again" in html


def test_run_again_sends_the_same_body_as_a_new_run(client_for, editor, owner, version, maxim):
    client_for(editor).post(run_url(version), run_form_data())
    first = Run.objects.get()
    response = client_for(owner).post(reverse("run_again", args=[first.pk]), {"idempotency_key": "again-1"})
    second = Run.objects.exclude(pk=first.pk).get()
    assert response["Location"] == reverse("run_detail", args=[second.pk])
    assert second.user == owner and second.status == Run.Status.SUCCESS
    bodies = sent_bodies(maxim)
    assert len(bodies) == 2 and bodies[0] == bodies[1] == second.request_body
    client_for(owner).post(reverse("run_again", args=[first.pk]), {"idempotency_key": "again-1"})
    assert maxim.calls.call_count == 2  # a double click on "Run again" is still one run


def test_a_stale_pending_run_shows_as_interrupted(client_for, editor, version):
    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=editor,
        provider="openai",
        model_name="gpt-4o",
        created_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    html = client_for(editor).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Interrupted" in html and "may or may not have reached Maxim" in html
    run.refresh_from_db()
    assert run.status == Run.Status.PENDING  # a GET writes nothing: the runner's sweep settles it


def test_a_fresh_pending_result_keeps_polling(client_for, editor, version):
    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=editor,
        provider="openai",
        model_name="gpt-4o",
    )
    html = client_for(editor).get(reverse("run_result", args=[run.pk])).content.decode()
    assert f'hx-get="{reverse("run_result", args=[run.pk])}?wait=1" hx-trigger="load"' in html
    assert "Waiting for Maxim" in html


def test_get_is_the_only_safe_method_on_the_run_page(client_for, editor, version):
    assert client_for(editor).put(run_url(version)).status_code == 405
    assert client_for(editor).get(reverse("version_estimate", args=[version.pk])).status_code == 405


def test_a_form_without_a_key_still_runs(client_for, editor, version, maxim):
    response = client_for(editor).post(run_url(version), run_form_data(idempotency_key=""))
    assert response.status_code == 302
    assert Run.objects.get().idempotency_key == ""


def test_a_tampered_key_is_reported_not_run(client_for, editor, version, maxim):
    html = client_for(editor).post(run_url(version), run_form_data(idempotency_key="k" * 65)).content.decode()
    assert "This form is out of date" in html
    assert maxim.calls.call_count == 0


def test_the_run_page_lists_tool_calls_by_name_with_pretty_arguments(client_for, editor, version):
    calls = [{"id": "call_9", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id":"A-17"}'}}]
    output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls}}]}
    with respx.mock() as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(200, json={"data": {"output": output, "usage": {}}}))
        client_for(editor).post(run_url(version), run_form_data())
    html = client_for(editor).get(reverse("run_detail", args=[Run.objects.get().pk])).content.decode()
    assert "<code>lookup_order</code>" in html
    assert "{\n  &quot;id&quot;: &quot;A-17&quot;\n}" in html


def test_the_version_page_includes_the_run_panel(client_for, editor, viewer, version):
    url = reverse("version_detail", args=[version.pk])
    html = client_for(editor).get(url).content.decode()
    assert 'id="run-panel"' in html and 'name="var__company"' in html
    assert 'class="run-fields" disabled' not in html
    assert 'class="run-fields" disabled' in client_for(viewer).get(url).content.decode()


def test_each_turn_role_select_has_an_accessible_name(client_for, editor, version):
    html = client_for(editor).get(reverse("version_detail", args=[version.pk])).content.decode()
    assert 'aria-label="Role of turn 1"' in html


def test_after_a_reload_the_version_page_points_to_a_run_still_waiting_for_maxim(client_for, editor, viewer, version):
    from prompts_app.models import Run

    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=editor,
        provider=version.provider,
        model_name=version.model_name,
        status=Run.Status.PENDING,
    )
    html = client_for(editor).get(reverse("version_detail", args=[version.pk])).content.decode()
    assert "is still waiting for Maxim" in html and reverse("run_detail", args=[run.pk]) in html
    assert (
        "is still waiting for Maxim"
        not in client_for(viewer).get(reverse("version_detail", args=[version.pk])).content.decode()
    )
