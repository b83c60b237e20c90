"""Deploying a version with deployment conditions."""

from __future__ import annotations

import json

import httpx
import respx

from prompts_app.models import Deployment
from tests.maxim_spec import validate_request
from tests.conftest import conditions

DEPLOY_URL = "https://maxim.test/v1/prompts/deploy"


def test_deploy_page_starts_with_one_condition_row(client_for, editor, version):
    html = client_for(editor).get(f"/versions/{version.pk}/deploy/").content.decode()
    assert 'id="condition-0"' in html and 'id="condition-1"' not in html


def test_deploy_sends_the_conditions_and_stores_maxims_answer(client_for, editor, version):
    answer = {
        "data": {
            "id": "dep-1",
            "promptId": "prompt-1",
            "versionId": "version-1",
            "status": "active",
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": "2025-01-01T00:00:00Z",
        }
    }
    with respx.mock() as mock:
        route = mock.post(DEPLOY_URL).mock(return_value=httpx.Response(200, json=answer))
        response = client_for(editor).post(
            f"/versions/{version.pk}/deploy/", conditions((" env ", "=", "prod"), ("tier", ">=", "2")), follow=True
        )
    body = json.loads(route.calls.last.request.content)
    validate_request("POST", "/v1/prompts/deploy", body)
    assert body == {
        "promptId": "prompt-1",
        "versionId": "version-1",
        "workspaceId": "ws-1",
        "deploymentConditions": [
            {"variable": "env", "operator": "=", "value": "prod"},
            {"variable": "tier", "operator": ">=", "value": "2"},
        ],
    }
    deployment = Deployment.objects.get()
    assert deployment.status == "active" and deployment.response["id"] == "dep-1" and deployment.created_by == editor
    assert deployment.conditions == body["deploymentConditions"]
    html = response.content.decode()
    assert "Deployed version 1" in html and 'id="deployment-list"' in html


def test_a_failed_deploy_is_recorded_and_shown_with_the_form_kept(client_for, editor, version):
    with respx.mock() as mock:
        mock.post(DEPLOY_URL).mock(return_value=httpx.Response(404, json={"error": {"message": "nope"}}))
        response = client_for(editor).post(f"/versions/{version.pk}/deploy/", conditions(("env", "=", "prod")))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Maxim did not deploy the version: Maxim could not find the prompt version" in html
    assert 'value="prod"' in html
    deployment = Deployment.objects.get()
    assert deployment.status == "failed" and "could not find" in deployment.error


def test_at_least_one_condition_is_required(client_for, editor, version):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(DEPLOY_URL)
        html = client_for(editor).post(f"/versions/{version.pk}/deploy/", conditions()).content.decode()
    assert not route.called
    assert "Add at least one deployment condition." in html
    alert = html.split('role="alert"', 1)[1]  # the error is announced, not only shown
    assert alert.index("Add at least one deployment condition.") < alert.index("</div>")


def test_each_condition_needs_a_variable_a_known_operator_and_a_value(client_for, editor, version):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(DEPLOY_URL)
        html = client_for(editor).post(f"/versions/{version.pk}/deploy/", conditions(("", "!=", ""))).content.decode()
    assert not route.called
    assert "Condition 1: name the variable to match." in html
    assert "Condition 1: give the value to compare with." in html
    assert "Condition 1: Select a valid choice. != is not one of the available choices." in html


def test_adding_and_removing_condition_rows_keeps_the_others(client_for, editor, version):
    client = client_for(editor)
    html = client.post(
        f"/versions/{version.pk}/deploy/", conditions(("env", "=", "prod"), action="add_condition")
    ).content.decode()
    assert 'id="condition-1"' in html and 'value="prod"' in html
    assert "name the variable" not in html  # adding a row is not a submit
    html = client.post(
        f"/versions/{version.pk}/deploy/", conditions(("a", "=", "1"), ("b", "<", "2"), action="remove_condition:0")
    ).content.decode()
    assert 'value="b"' in html and 'value="a"' not in html
    assert not Deployment.objects.exists()


def test_viewer_cannot_deploy(client_for, viewer, version):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(DEPLOY_URL)
        assert (
            client_for(viewer).post(f"/versions/{version.pk}/deploy/", conditions(("env", "=", "prod"))).status_code
            == 403
        )
        assert client_for(viewer).get(f"/versions/{version.pk}/deploy/").status_code == 403
    assert not route.called and not Deployment.objects.exists()


def test_outsider_gets_404_on_deploy(client_for, outsider, version):
    assert client_for(outsider).get(f"/versions/{version.pk}/deploy/").status_code == 404
    assert client_for(outsider).post(f"/versions/{version.pk}/deploy/", conditions(("e", "=", "p"))).status_code == 404
