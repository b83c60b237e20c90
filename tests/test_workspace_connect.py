"""Connecting a workspace in two steps; Maxim faked at the HTTP boundary with respx."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import respx
from django.urls import reverse

from prompts_app import crypto
from prompts_app.models import Membership, Role, Workspace
from tests.maxim_spec import validate_request
from tests.conftest import API_KEY, BASE_URL

CONNECT = "/workspaces/connect/"
PICK = "/workspaces/connect/pick/"
KEY = "mx-secret-connect-key-9876"


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    # The client backs off between retried GETs; tests need not wait for it.
    monkeypatch.setattr("prompts_app.maxim.client._backoff", lambda attempt: 0)


def _workspaces_page(items, cursor=None):
    return {
        "data": [{"id": i, "name": n, "accountId": "acc", "createdAt": "", "updatedAt": ""} for i, n in items],
        "pagination": {"nextCursor": cursor, "hasMore": cursor is not None},
    }


def _assert_valid(request: httpx.Request) -> None:
    body = json.loads(request.content) if request.content else None
    query = {k: [v] for k, v in request.url.params.items()}
    validate_request(request.method, request.url.path, body, query, headers=dict(request.headers))


@pytest.fixture
def maxim():
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


def _step1(client, key=KEY, base_url=BASE_URL, **extra):
    return client.post(CONNECT, {"api_key": key, "base_url": base_url}, **extra)


def test_step_one_shows_the_key_field_as_a_password_with_autocomplete_off(client_for, owner, settings):
    settings.MAXIM_BASE_URL = "https://api.example-maxim.test"
    response = client_for(owner).get(CONNECT)
    html = response.content.decode()
    assert 'type="password"' in html and 'autocomplete="off"' in html
    assert 'value="https://api.example-maxim.test"' in html


def test_connecting_lists_every_page_of_workspaces_then_saves_the_picked_one(client_for, owner, maxim):
    route = maxim.get("/v1/workspaces").mock(
        side_effect=[
            httpx.Response(200, json=_workspaces_page([("ws_a", "Alpha")], cursor="c1")),
            httpx.Response(200, json=_workspaces_page([("ws_b", "Beta")])),
        ]
    )
    client = client_for(owner)
    response = _step1(client)
    assert response.status_code == 302 and response["Location"] == PICK
    assert route.call_count == 2
    for call in route.calls:
        _assert_valid(call.request)
        assert call.request.headers["x-maxim-api-key"] == KEY
    assert route.calls[1].request.url.params["cursor"] == "c1"

    page = client.get(PICK).content.decode()
    assert "Alpha (ws_a)" in page and "Beta (ws_b)" in page
    assert KEY not in page  # not even in a hidden field between the steps

    response = client.post(PICK, {"maxim_id": "ws_b", "name": ""})
    workspace = Workspace.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("workspace_settings", args=[workspace.pk])
    assert (workspace.name, workspace.maxim_id, workspace.base_url) == ("Beta", "ws_b", BASE_URL)
    assert workspace.get_api_key() == KEY and KEY not in workspace.api_key_encrypted
    assert Membership.objects.get(workspace=workspace).role == Role.OWNER
    assert "workspace_connect" not in client.session  # the stashed key is gone


def test_the_key_waits_encrypted_in_the_session_between_the_steps(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(owner)
    _step1(client)
    stash = client.session["workspace_connect"]
    assert KEY not in json.dumps(stash)
    assert crypto.decrypt(stash["key"]) == KEY


def test_an_expired_stash_asks_for_the_key_again(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(owner)
    _step1(client)
    session = client.session
    session["workspace_connect"]["expires"] = time.time() - 1
    session.save()
    response = client.post(PICK, {"maxim_id": "ws_a"}, follow=True)
    assert response.redirect_chain[-1][0] == CONNECT
    assert "enter the key again" in response.content.decode()
    assert not Workspace.objects.exists()


def test_step_two_without_step_one_redirects_to_step_one(client_for, owner):
    response = client_for(owner).get(PICK)
    assert response.status_code == 302 and response["Location"] == CONNECT


@pytest.mark.parametrize(
    "key,base_url,field,message",
    [
        ("   ", BASE_URL, "api_key", "cannot be blank"),
        ("", BASE_URL, "api_key", "cannot be blank"),
        ("has space", BASE_URL, "api_key", "paste it again"),
        (KEY, "ftp://maxim.test", "base_url", "http:// or https://"),
        (KEY, "not a url", "base_url", "Enter a valid URL"),
        (KEY, "https://user:pw@maxim.test", "base_url", "must not contain"),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field_and_keeps_the_url(
    client_for, owner, maxim, key, base_url, field, message
):
    route = maxim.get("/v1/workspaces")
    response = _step1(client_for(owner), key=key, base_url=base_url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html and message in html
    assert not route.called
    if field == "api_key":
        assert f'value="{base_url}"' in html


def test_a_key_maxim_rejects_is_reported_next_to_the_key_and_never_echoed(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(401, json={"error": {"message": f"bad key {KEY}"}})
    response = _step1(client_for(owner))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_api_key_error"' in html and "Maxim rejected this API key" in html
    assert KEY not in html
    assert f'value="{BASE_URL}"' in html
    assert not Workspace.objects.exists()


def test_an_unreachable_host_is_reported_next_to_the_base_url(client_for, owner, maxim):
    maxim.get("/v1/workspaces").mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))
    response = _step1(client_for(owner))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_base_url_error"' in html and "maxim.test" in html
    assert "enter the key again" in html


def test_a_timeout_is_reported_without_a_500(client_for, owner, maxim):
    maxim.get("/v1/workspaces").mock(side_effect=httpx.ConnectTimeout("timed out"))
    response = _step1(client_for(owner))
    assert response.status_code == 200
    assert "Could not connect to Maxim" in response.content.decode()


def test_a_refused_listing_lets_the_user_type_the_workspace_id_which_is_checked(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(403, json={"error": {"message": "forbidden"}})
    prompts = maxim.get("/v1/prompts").respond(200, json={"data": [], "pagination": {"cursor": None}})
    client = client_for(owner)
    assert _step1(client).status_code == 302
    page = client.get(PICK).content.decode()
    assert "Type the workspace ID" in page and 'name="maxim_id"' in page and 'type="radio"' not in page

    response = client.post(PICK, {"maxim_id": " ws_typed ", "name": "Typed one"})
    assert response.status_code == 302
    workspace = Workspace.objects.get()
    assert (workspace.maxim_id, workspace.name) == ("ws_typed", "Typed one")
    _assert_valid(prompts.calls.last.request)
    assert prompts.calls.last.request.url.params["workspaceId"] == "ws_typed"


def test_a_typed_workspace_the_key_cannot_reach_is_refused_next_to_the_id(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(403)
    maxim.get("/v1/prompts").respond(403, json={"error": {"message": "no access"}})
    client = client_for(owner)
    _step1(client)
    response = client.post(PICK, {"maxim_id": "ws_other", "name": "Mine"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_maxim_id_error"' in html and "cannot reach the workspace ws_other" in html
    assert 'value="ws_other"' in html and 'value="Mine"' in html
    assert not Workspace.objects.exists()


def test_picking_a_workspace_the_key_does_not_list_is_refused(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(owner)
    _step1(client)
    response = client.post(PICK, {"maxim_id": "ws_forged"})
    assert response.status_code == 200
    assert "Pick one of the workspaces the key reaches" in response.content.decode()
    assert not Workspace.objects.exists()


def test_a_key_that_reaches_no_workspace_says_so(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([]))
    client = client_for(owner)
    _step1(client)
    assert "This key reaches no workspaces" in client.get(PICK).content.decode()


def test_connecting_the_same_workspace_twice_is_refused_with_a_message(client_for, owner, make_workspace, maxim):
    make_workspace(owner=owner, maxim_id="ws_a", base_url=BASE_URL)
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(owner)
    _step1(client, base_url=BASE_URL + "/")  # same URL once normalised
    response = client.post(PICK, {"maxim_id": "ws_a", "name": "Again"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "already connected this workspace" in html and 'value="Again"' in html
    assert Workspace.objects.count() == 1


def test_another_user_may_connect_the_same_workspace(client_for, owner, outsider, make_workspace, maxim):
    make_workspace(owner=owner, maxim_id="ws_a")
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(outsider)
    _step1(client)
    assert client.post(PICK, {"maxim_id": "ws_a"}).status_code == 302
    assert Workspace.objects.filter(maxim_id="ws_a").count() == 2


def test_htmx_step_one_returns_step_two_as_a_fragment(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    response = _step1(client_for(owner), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="connect"') and "Alpha (ws_a)" in html
    assert response["HX-Push-Url"] == PICK


def test_htmx_step_two_redirects_the_browser_to_the_settings_page(client_for, owner, maxim):
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([("ws_a", "Alpha")]))
    client = client_for(owner)
    _step1(client)
    response = client.post(PICK, {"maxim_id": "ws_a"}, headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("workspace_settings", args=[Workspace.objects.get().pk])


def test_the_default_fixture_key_is_accepted_as_is(client_for, owner, maxim):
    # The conftest key has a dash and digits: an ordinary key must pass the form's checks.
    maxim.get("/v1/workspaces").respond(200, json=_workspaces_page([]))
    assert _step1(client_for(owner), key=API_KEY).status_code == 302


def test_a_maxim_server_error_is_shown_above_the_form_and_nothing_is_stashed(client_for, owner, maxim):
    route = maxim.get("/v1/workspaces").respond(503, text="<html>upstream down</html>")
    client = client_for(owner)
    response = _step1(client)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="alert error"' in html and "Maxim had a server error (503)" in html
    assert f'value="{BASE_URL}"' in html and "enter the key again" in html
    assert route.call_count == 1  # a URL just typed is tried once: no retries while connecting
    assert "workspace_connect" not in client.session


def test_after_an_error_about_the_url_htmx_keeps_the_typed_key_input_without_echoing_it(client_for, owner, maxim):
    client = client_for(owner)
    html = _step1(client, base_url="not a url", HTTP_HX_REQUEST="true").content.decode()
    key_input = html[html.index('id="id_api_key"') - 200 : html.index('id="id_api_key"') + 200]
    assert "hx-preserve" in key_input and KEY not in html  # the browser keeps its own input
    assert "the key is not shown again" not in html
    refused = _step1(client, key="", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-preserve" not in refused  # a refused key is typed again, never kept
