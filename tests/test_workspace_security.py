"""Attacks on a workspace's key: a co-owner or a staff user moving it to their own host,
a stale Replace-key form, a viewer spending it, an undecryptable key, an abandoned connect flow.

Keys are organisation-wide: whoever makes the server send the stored key to a host they
control can read it there. "other.example.test" plays the attacker's host (it is allowed by the
test policy, as a self-hosted Maxim would be), faked with respx so we can see what reached it.
"""

from __future__ import annotations

import time

import httpx
import pytest
import respx
from cryptography.fernet import Fernet
from django.urls import reverse

from prompts_app.models import Membership, Role, Workspace
from tests.conftest import API_KEY, BASE_URL, conditions, run_form_data

EVIL = "https://other.example.test"
HX = {"HX-Request": "true"}
PROMPTS = {"data": [], "pagination": {"hasMore": False}}


@pytest.fixture
def co_owner(make_user, workspace):
    user = make_user("carol")
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def hosts():
    """Both the real base URL and the attacker's host, recording every request."""
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE_URL}/v1/prompts").respond(200, json=PROMPTS)
        router.get(f"{EVIL}/v1/prompts").respond(200, json=PROMPTS)
        yield router


def keys_sent_to(router, origin: str) -> list[str]:
    return [c.request.headers["x-maxim-api-key"] for c in router.calls if str(c.request.url).startswith(origin)]


def test_a_co_owner_cannot_move_the_stored_key_to_their_host(client_for, co_owner, workspace, hosts):
    client = client_for(co_owner)
    response = client.post(
        reverse("workspace_update", args=[workspace.pk]), {"name": workspace.name, "base_url": EVIL}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200 and "Enter the API key again" in html and f'value="{EVIL}"' in html
    client.post(reverse("workspace_test", args=[workspace.pk]), headers=HX)
    workspace.refresh_from_db()
    assert workspace.base_url == BASE_URL
    assert keys_sent_to(hosts, EVIL) == [] and keys_sent_to(hosts, BASE_URL) == [API_KEY]


def test_moving_with_a_key_sends_only_that_key_to_the_new_host(client_for, co_owner, workspace, hosts):
    client = client_for(co_owner)
    client.post(
        reverse("workspace_update", args=[workspace.pk]),
        {"name": workspace.name, "base_url": EVIL, "api_key": "carols-own-key"},
    )
    client.post(reverse("workspace_test", args=[workspace.pk]))
    workspace.refresh_from_db()
    # The workspace now holds the key that was verified there; the organisation's key never left.
    assert workspace.base_url == EVIL and workspace.get_api_key() == "carols-own-key"
    assert set(keys_sent_to(hosts, EVIL)) == {"carols-own-key"}


def test_replace_key_sends_the_new_key_only_to_the_url_the_owner_saw(client_for, owner, workspace, hosts):
    # The owner opened the page at BASE_URL; meanwhile the row was pointed elsewhere.
    Workspace.objects.filter(pk=workspace.pk).update(base_url=EVIL)
    response = client_for(owner).post(
        reverse("workspace_replace_key", args=[workspace.pk]),
        {"api_key": "org-wide-key-42", "base_url": BASE_URL},
        headers=HX,
    )
    html = response.content.decode()
    assert "The key was not sent" in html and f'name="base_url" value="{EVIL}"' in html
    assert hosts.calls.call_count == 0
    workspace.refresh_from_db()
    assert workspace.get_api_key() == API_KEY


def test_replace_key_without_a_confirmed_url_sends_nothing(client_for, owner, workspace, hosts):
    response = client_for(owner).post(reverse("workspace_replace_key", args=[workspace.pk]), {"api_key": "new-key-42"})
    assert response.status_code == 200 and hosts.calls.call_count == 0


@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_cannot_change_where_the_key_goes(staff_client, workspace, hosts):
    change = reverse("admin:prompts_app_workspace_change", args=[workspace.pk])
    html = staff_client.get(change).content.decode()
    assert 'name="base_url"' not in html and BASE_URL in html
    staff_client.post(
        change,
        {
            "name": "Acme",
            "maxim_id": "ws-1",
            "base_url": EVIL,
            "created_by": workspace.created_by_id,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "custom_prices-TOTAL_FORMS": "0",
            "custom_prices-INITIAL_FORMS": "0",
        },
    )
    workspace.refresh_from_db()
    assert workspace.base_url == BASE_URL


# -- an undecryptable key becomes a message everywhere it is used -----------------------------------

UNDECRYPTABLE = "cannot be decrypted with this server&#x27;s MAXIMUI_ENCRYPTION_KEYS"


@pytest.fixture
def lost_key(settings, workspace):
    settings.MAXIMUI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key it was saved with is gone
    with respx.mock(assert_all_called=False) as router:
        router.route(host="maxim.test").respond(200, json=PROMPTS)
        yield router
    assert router.calls.call_count == 0


def test_an_undecryptable_key_is_explained_when_testing(client_for, owner, workspace, lost_key):
    html = client_for(owner).post(reverse("workspace_test", args=[workspace.pk]), headers=HX).content.decode()
    assert UNDECRYPTABLE in html and "Replace key" in html


@pytest.mark.parametrize("action", ["sync", "create", "import", "deploy", "run"])
def test_an_undecryptable_key_is_explained_everywhere(client_for, editor, version, lost_key, action):
    client = client_for(editor)
    prompt, workspace = version.prompt, version.prompt.workspace
    requests = {
        "sync": lambda: client.post(reverse("prompt_sync", args=[workspace.pk]), follow=True),
        "create": lambda: client.post(
            reverse("prompt_create", args=[workspace.pk]), {"name": "New", "description": ""}
        ),
        "import": lambda: client.post(reverse("prompt_import", args=[prompt.pk]), follow=True),
        "deploy": lambda: client.post(reverse("version_deploy", args=[version.pk]), conditions(("env", "=", "prod"))),
        "run": lambda: client.post(reverse("version_run", args=[version.pk]), run_form_data(), headers=HX, follow=True),
    }
    response = requests[action]()
    assert response.status_code == 200
    assert UNDECRYPTABLE in response.content.decode()


# -- the connect flow's pending key --------------------------------------------------------------------


def test_an_abandoned_connect_flow_leaves_no_usable_key(client_for, owner, monkeypatch):
    with respx.mock(base_url=BASE_URL) as maxim:
        maxim.get("/v1/workspaces").respond(200, json={"data": [{"id": "ws_a", "name": "A"}]})
        client = client_for(owner)
        client.post(reverse("workspace_connect"), {"api_key": API_KEY, "base_url": BASE_URL})
    session = client.session
    session["workspace_connect"]["expires"] = time.time() + 10**9  # even with the session's own clock pushed on
    session.save()
    later = time.time() + 16 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.post(reverse("workspace_connect_pick"), {"maxim_id": "ws_a"})
    assert response.status_code == 302 and response["Location"] == reverse("workspace_connect")
    assert "workspace_connect" not in client.session and not Workspace.objects.exists()


@pytest.mark.parametrize(
    "base_url, message",
    [
        ("https://maxim.test:99999", "invalid port"),
        ("https://\u2488.test", "host name that cannot be used"),
        ("http://169.254.169.254", "outbound policy"),
    ],
)
def test_unusable_base_urls_are_explained_in_the_connect_form(client_for, owner, base_url, message):
    with respx.mock(assert_all_called=False) as router:
        response = client_for(owner).post(reverse("workspace_connect"), {"api_key": API_KEY, "base_url": base_url})
    assert response.status_code == 200 and message in response.content.decode()
    assert router.calls.call_count == 0


def test_a_stored_row_with_an_impossible_port_is_explained_not_a_500(client_for, owner, workspace):
    Workspace.objects.filter(pk=workspace.pk).update(base_url="https://maxim.test:99999")
    response = client_for(owner).post(reverse("workspace_test", args=[workspace.pk]), headers=HX)
    assert response.status_code == 200 and "invalid port" in response.content.decode()


def test_no_httpx_exception_leaves_the_client(client_for, owner, workspace):
    with respx.mock() as router:
        router.get(f"{BASE_URL}/v1/prompts").mock(side_effect=httpx.DecodingError("bad gzip"))
        response = client_for(owner).post(reverse("workspace_test", args=[workspace.pk]), headers=HX)
    assert response.status_code == 200 and "DecodingError" in response.content.decode()
