"""Trying a draft from the builder: a run of what is typed, recorded as a draft run, beside the form."""

from __future__ import annotations

import json

import httpx
import respx

from prompts_app.models import PromptVersion, Run
from tests.maxim_spec import validate_request
from tests.conftest import CONTENT, builder_form_data, builder_url

RUN_URL = "https://maxim.test/v1/prompts/run"


def run_url(prompt, base=None):
    return f"/prompts/{prompt.pk}/build/run/" + (f"?from={base.pk}" if base else "")


def answer(text="Hello Ann from Acme", prompt_tokens=30, completion_tokens=7):
    usage = {
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
    }
    output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    return httpx.Response(200, json={"data": {"output": output, "usage": usage}})


def playground_post(content=CONTENT, **values):
    data = builder_form_data(content)
    data.pop("action")
    return {**data, "run_key": "k-1", **{f"var__{k}": v for k, v in values.items()}}


@respx.mock
def test_running_the_draft_sends_what_is_typed_and_records_a_draft_run(client_for, editor, version):
    route = respx.post(RUN_URL).mock(return_value=answer())
    response = client_for(editor).post(
        run_url(version.prompt, version), playground_post(company="Acme", name="Ann"), HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    body = json.loads(route.calls.last.request.content)
    validate_request("POST", "/v1/prompts/run", body, headers=dict(route.calls.last.request.headers))
    assert body["versionId"] == version.maxim_id and body["modelName"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "You answer for Acme."},
        {"role": "user", "content": "Hi, I am Ann."},
    ]
    run = Run.objects.get()
    assert run.is_draft and run.version == version and run.user == editor
    assert run.total_tokens == 37 and run.input["variables"] == {"company": "Acme", "name": "Ann"}
    # Only the playground comes back: output, tokens, cost, the values typed; never the builder form.
    assert html.lstrip().startswith('<section id="playground"')
    assert '<form id="builder"' not in html
    assert "Hello Ann from Acme" in html and "<strong>37</strong> tokens" in html and "run-cost" in html
    assert ">Acme</textarea>" in html and ">Ann</textarea>" in html
    assert "Counted in costs as an unsaved draft of Support reply." in html  # re-trial: the name was lost
    assert not PromptVersion.objects.exclude(pk=version.pk).exists()


@respx.mock
def test_the_same_run_key_sent_twice_runs_once(client_for, editor, version):
    route = respx.post(RUN_URL).mock(return_value=answer())
    client = client_for(editor)
    for _ in range(2):
        client.post(run_url(version.prompt, version), playground_post(company="A", name="B"), HTTP_HX_REQUEST="true")
    assert route.call_count == 1 and Run.objects.count() == 1


@respx.mock
def test_an_invalid_draft_is_not_run(client_for, editor, version):
    route = respx.post(RUN_URL)
    data = playground_post()
    data["model_name"] = ""
    html = client_for(editor).post(run_url(version.prompt, version), data, HTTP_HX_REQUEST="true").content.decode()
    assert not route.called and not Run.objects.exists()
    assert "The draft has 1 problem: press Check in the builder" in html and 'role="alert"' in html


def test_a_prompt_without_versions_says_what_to_do_first(client_for, editor, prompt):
    html = client_for(editor).post(run_url(prompt), playground_post(), HTTP_HX_REQUEST="true").content.decode()
    assert "Create a first version of this prompt before trying drafts" in html
    assert not Run.objects.exists()


def test_oversized_variables_are_refused_without_sending(client_for, editor, version):
    html = (
        client_for(editor)
        .post(
            run_url(version.prompt, version), playground_post(company="x" * 100_001, name="Ada"), HTTP_HX_REQUEST="true"
        )
        .content.decode()
    )
    assert "the limit is 100,000" in html and not Run.objects.exists()


def test_a_variable_bomb_is_refused_by_its_filled_in_size(client_for, editor, version):
    content = {**CONTENT, "messages": [{"role": "user", "content": "{{company}} " * 50}]}
    html = (
        client_for(editor)
        .post(run_url(version.prompt, version), playground_post(content, company="x" * 90_000), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "once the variables are filled in" in html and not Run.objects.exists()


def test_empty_variables_are_refused_as_on_the_run_form(client_for, editor, version):
    html = (
        client_for(editor)
        .post(run_url(version.prompt, version), playground_post(company="Acme", name="  "), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "Fill in {{name}}: the draft&#x27;s messages use it." in html and not Run.objects.exists()


def test_refreshing_the_variables_lists_the_ones_typed_now_and_keeps_values(client_for, editor, version):
    data = {**playground_post(company="Acme"), "action": "variables", "m-1-text": "Order {{order_id}}"}
    html = client_for(editor).post(run_url(version.prompt, version), data, HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<fieldset id="playground-vars"')
    assert 'name="var__company"' in html and ">Acme</textarea>" in html
    assert 'name="var__order_id"' in html and 'name="var__name"' not in html
    assert not Run.objects.exists()


def test_the_builder_page_has_the_playground_beside_the_form(client_for, editor, version):
    html = client_for(editor).get(builder_url(version.prompt, version)).content.decode()
    form_end = html.index("</form>", html.index('<form id="builder"'))
    playground = html.index('<section id="playground"')
    assert playground > form_end  # outside the builder form: a run never swaps or submits it
    assert 'hx-target="#playground"' in html and 'hx-include="#builder"' in html
    assert 'name="var__company"' in html and 'name="var__name"' in html


def test_a_successful_builder_save_tells_the_playground(client_for, editor, prompt):
    response = client_for(editor).post(builder_url(prompt), builder_form_data(), HTTP_HX_REQUEST="true")
    assert json.loads(response["HX-Trigger"]).keys() == {"builder-saved"}


def test_outsiders_get_404_and_viewers_403(client_for, outsider, viewer, version):
    url = run_url(version.prompt, version)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(RUN_URL)
        assert client_for(outsider).post(url, playground_post()).status_code == 404
        assert client_for(viewer).post(url, playground_post()).status_code == 403
    assert not route.called and not Run.objects.exists()


@respx.mock
def test_without_javascript_the_saved_draft_runs_and_the_builder_page_shows_the_result(client_for, editor, version):
    respx.post(RUN_URL).mock(return_value=answer())
    client = client_for(editor)
    client.post(builder_url(version.prompt, version), builder_form_data())
    response = client.post(
        run_url(version.prompt, version), {"var__company": "Acme", "var__name": "Ann", "run_key": "k"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and '<form id="builder"' in html and "Hello Ann from Acme" in html
    assert Run.objects.get().request_body["messages"][0]["content"] == "You answer for Acme."
