"""A workspace's prompts (list, sync, create), the prompt page and the version page."""

from __future__ import annotations

import json

import httpx
import respx

from prompts_app.models import Prompt, PromptVersion
from tests.maxim_spec import validate_request

PROMPTS_URL = "https://maxim.test/v1/prompts"


def maxim_prompt(id, name, description=""):
    return {
        "id": id,
        "name": name,
        "description": description,
        "workspaceId": "ws-1",
        "folderId": None,
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
    }


def test_prompt_list_shows_the_workspace_prompts(client_for, viewer, prompt):
    html = client_for(viewer).get(f"/workspaces/{prompt.workspace.pk}/prompts/").content.decode()
    assert "Support reply" in html and f'href="/prompts/{prompt.pk}/"' in html
    # A viewer sees no buttons that would only answer 403.
    assert 'id="sync-prompts"' not in html and 'id="new-prompt"' not in html


def test_prompt_list_offers_sync_and_new_prompt_to_editors(client_for, editor, workspace):
    html = client_for(editor).get(f"/workspaces/{workspace.pk}/prompts/").content.decode()
    assert 'id="sync-prompts"' in html and 'id="new-prompt"' in html


def test_sync_follows_every_page_and_upserts_by_maxim_id(client_for, editor, prompt):
    pages = [
        httpx.Response(
            200,
            json={
                "data": [maxim_prompt("prompt-1", "Support reply v2", "now described")],
                "pagination": {"cursor": "1", "hasMore": True},
            },
        ),
        httpx.Response(
            200,
            json={"data": [maxim_prompt("prompt-9", "Onboarding")], "pagination": {"cursor": None, "hasMore": False}},
        ),
    ]
    with respx.mock() as mock:
        route = mock.get(PROMPTS_URL).mock(side_effect=pages)
        response = client_for(editor).post(f"/workspaces/{prompt.workspace.pk}/prompts/sync/", follow=True)
    assert route.call_count == 2
    for call in route.calls:
        validate_request("GET", "/v1/prompts", None, dict(call.request.url.params))
    assert route.calls[0].request.url.params["workspaceId"] == "ws-1"
    assert route.calls[1].request.url.params["cursor"] == "1"
    assert Prompt.objects.count() == 2
    prompt.refresh_from_db()
    assert prompt.name == "Support reply v2" and prompt.description == "now described" and prompt.synced_at
    assert Prompt.objects.get(maxim_id="prompt-9").workspace == prompt.workspace
    assert "Synced from Maxim: 1 new, 1 updated." in response.content.decode()


def test_a_failed_sync_shows_maxims_reason(client_for, editor, workspace):
    with respx.mock() as mock:
        mock.get(PROMPTS_URL).mock(return_value=httpx.Response(401, json={"error": {"message": "bad key"}}))
        html = client_for(editor).post(f"/workspaces/{workspace.pk}/prompts/sync/", follow=True).content.decode()
    assert "Could not sync prompts: Maxim rejected the API key" in html
    assert "test-key-1234" not in html
    assert not Prompt.objects.exists()


def test_new_prompt_is_created_on_maxim_and_stored_with_its_id(client_for, editor, workspace):
    answer = {"data": {"data": maxim_prompt("prompt-new", "Triage", "Sorts tickets")}}
    with respx.mock() as mock:
        route = mock.post(PROMPTS_URL).mock(return_value=httpx.Response(201, json=answer))
        response = client_for(editor).post(
            f"/workspaces/{workspace.pk}/prompts/new/", {"name": "Triage", "description": "Sorts tickets"}
        )
    body = json.loads(route.calls.last.request.content)
    validate_request("POST", "/v1/prompts", body)
    assert body == {"workspaceId": "ws-1", "name": "Triage", "description": "Sorts tickets"}
    prompt = Prompt.objects.get(maxim_id="prompt-new")
    assert prompt.workspace == workspace and prompt.name == "Triage"
    assert response.status_code == 302 and response["Location"] == f"/prompts/{prompt.pk}/"


def test_new_prompt_without_a_name_is_rerendered_with_the_input_kept(client_for, editor, workspace):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(PROMPTS_URL)
        response = client_for(editor).post(
            f"/workspaces/{workspace.pk}/prompts/new/", {"name": "", "description": "keep me"}
        )
    html = response.content.decode()
    assert response.status_code == 200 and not route.called
    assert "Give the prompt a name." in html and "keep me" in html
    alert = html.split('id="new-prompt-errors"', 1)[1]  # announced to screen readers
    assert 'role="alert"' in html.split('id="new-prompt-errors"', 1)[0].rsplit("<div", 1)[1]
    assert alert.index("Name: Give the prompt a name.") < alert.index("</div>")


def test_new_prompt_failing_on_maxim_keeps_the_form(client_for, editor, workspace):
    with respx.mock() as mock:
        mock.post(PROMPTS_URL).mock(return_value=httpx.Response(400, json={"error": {"message": "name taken"}}))
        response = client_for(editor).post(
            f"/workspaces/{workspace.pk}/prompts/new/", {"name": "Triage", "description": "d"}
        )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Maxim did not create the prompt: Maxim rejected the request: name taken" in html
    assert 'value="Triage"' in html and not Prompt.objects.exists()


def test_viewer_cannot_sync_or_create_prompts(client_for, viewer, workspace):
    client = client_for(viewer)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="maxim.test")
        assert client.post(f"/workspaces/{workspace.pk}/prompts/sync/").status_code == 403
        assert client.post(f"/workspaces/{workspace.pk}/prompts/new/", {"name": "x"}).status_code == 403
    assert not route.called


def test_outsider_gets_404_on_every_prompt_url(client_for, outsider, version):
    client = client_for(outsider)
    prompt, workspace = version.prompt, version.prompt.workspace
    assert client.get(f"/workspaces/{workspace.pk}/prompts/").status_code == 404
    assert client.post(f"/workspaces/{workspace.pk}/prompts/sync/").status_code == 404
    assert client.post(f"/workspaces/{workspace.pk}/prompts/new/", {"name": "x"}).status_code == 404
    assert client.get(f"/prompts/{prompt.pk}/").status_code == 404
    assert client.get(f"/versions/{version.pk}/").status_code == 404


def test_anonymous_users_are_sent_to_login(client, version):
    response = client.get(f"/prompts/{version.prompt.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_prompt_page_lists_versions_with_builder_and_compare_links(client_for, editor, version):
    newer = PromptVersion.objects.create(
        prompt=version.prompt,
        maxim_id="version-2",
        number=2,
        description="Second",
        model_name="gpt-4o-mini",
        author_name="Ada",
        source=PromptVersion.Source.CREATED,
    )
    html = client_for(editor).get(f"/prompts/{version.prompt.pk}/").content.decode()
    assert "First cut" in html and "Second" in html and "gpt-4o-mini" in html and "Ada" in html
    assert f"/prompts/{version.prompt.pk}/build/?from={newer.pk}" in html
    assert f'href="/prompts/{version.prompt.pk}/build/"' in html
    assert 'id="compare-picker"' in html and 'id="import-versions"' in html
    assert "created" in html and "imported" in html


def test_prompt_page_hides_editing_from_viewers(client_for, viewer, version):
    html = client_for(viewer).get(f"/prompts/{version.prompt.pk}/").content.decode()
    assert "First cut" in html
    assert 'id="import-versions"' not in html and 'id="new-version"' not in html


def test_version_page_shows_all_content_and_the_run_panel(client_for, editor, version):
    version.messages = [
        {"role": "system", "content": "Sys for {{company}}"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://img.test/a.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
            ],
        },
        {"role": "tool", "content": "ok", "tool_call_id": "call_1"},
    ]
    version.tools = [{"name": "lookup", "description": "Find", "parameters": {"type": "object", "properties": {}}}]
    version.save()
    html = client_for(editor).get(f"/versions/{version.pk}/").content.decode()
    assert "Sys for {{company}}" in html
    assert '<a href="https://img.test/a.png"' in html and "detail low" in html
    assert "call_1" in html and "lookup" in html and "{&quot;q&quot;: 1}" in html
    assert "answers tool call" in html
    assert "&quot;type&quot;: &quot;object&quot;" in html  # the schema, pretty-printed
    assert "max_tokens" in html and "256" in html and "temperature" in html
    assert 'id="run-panel"' in html
    assert f"/prompts/{version.prompt.pk}/build/?from={version.pk}" in html
    assert f"/versions/{version.pk}/deploy/" in html


def test_version_page_escapes_content(client_for, viewer, version):
    version.messages = [{"role": "user", "content": "<script>alert(1)</script>"}]
    version.save()
    html = client_for(viewer).get(f"/versions/{version.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_version_page_never_links_a_javascript_image_url(client_for, viewer, version):
    version.messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "javascript:alert(1)"}}]}
    ]
    version.save()
    html = client_for(viewer).get(f"/versions/{version.pk}/").content.decode()
    assert 'href="javascript:' not in html and "<code>javascript:alert(1)</code>" in html


def test_version_and_diff_pages_label_their_tables_and_sections(client_for, viewer, version):
    new = PromptVersion.objects.create(
        prompt=version.prompt,
        maxim_id="version-2",
        number=2,
        model_name="gpt-4o",
        model_parameters={"temperature": 1},
        messages=version.messages,
    )
    client = client_for(viewer)
    html = client.get(f"/versions/{version.pk}/").content.decode()
    assert 'aria-labelledby="version-parameters-title"' in html and 'aria-label="Model parameters"' in html
    assert '<label for="diff-with"' in html and 'aria-label="Breadcrumbs"' in html
    diff = client.get(f"/prompts/{version.prompt.pk}/diff/?a={version.pk}&b={new.pk}").content.decode()
    assert 'aria-label="Pick two versions"' in diff and 'aria-labelledby="diff-messages-title"' in diff
    assert 'aria-label="Messages: old and new"' in diff and '<th scope="row">' in diff


def test_a_long_description_is_folded_with_the_whole_text_one_click_away(client_for, viewer, version):
    version.description = "D" * 5_000
    version.save()
    html = client_for(viewer).get(f"/versions/{version.pk}/").content.decode()
    assert '<details class="longtext">' in html and "Show all 5000 characters" in html
    assert "D" * 5_000 in html  # inside the <details>, not cut away
    assert 'title="Support reply"' in html  # the truncated name in the heading keeps it whole on hover
