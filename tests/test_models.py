from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from prompts_app.maxim import NewVersion
from prompts_app.models import Membership, PromptVersion, Role
from prompts_app.views.access import get_version_for_user, get_workspace_for_user
from tests.maxim_spec import validate_request


def test_variables_are_found_in_text_and_parts_in_order_of_first_use(prompt):
    version = PromptVersion(
        prompt=prompt,
        messages=[
            {"role": "system", "content": "Answer as {{ persona }} for {{company}}."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "{{question}} about {{company}}"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/{{not_text}}.png"}},
                ],
            },
        ],
    )
    assert version.variables() == ["persona", "company", "question"]


def test_the_create_payload_carries_tools_in_model_parameters_and_matches_the_spec(version):
    version.tools = [
        {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        },
    ]
    payload = NewVersion.from_content(prompt_id=version.prompt.maxim_id, content=version.content()).body()

    assert payload["promptId"] == "prompt-1"
    assert payload["modelParameters"]["temperature"] == 0.2
    assert payload["modelParameters"]["tools"][0] == {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        },
    }
    validate_request("POST", "/v1/prompts/versions", payload)


def test_roles_are_ranked(workspace, viewer, editor, owner):
    def allows(user, role):
        return Membership.objects.get(workspace=workspace, user=user).allows(role)

    assert allows(owner, Role.OWNER) and allows(owner, Role.VIEWER)
    assert allows(editor, Role.EDITOR) and not allows(editor, Role.OWNER)
    assert allows(viewer, Role.VIEWER) and not allows(viewer, Role.EDITOR)


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_access_helpers_hide_other_workspaces_and_refuse_low_roles(workspace, version, outsider, viewer):
    with pytest.raises(Http404):
        get_workspace_for_user(_request(outsider), workspace.pk)
    with pytest.raises(Http404):
        get_version_for_user(_request(outsider), version.pk)
    with pytest.raises(PermissionDenied):
        get_version_for_user(_request(viewer), version.pk, Role.EDITOR)
    assert get_version_for_user(_request(viewer), version.pk) == version
