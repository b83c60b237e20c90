"""The workspace list and settings page: connection, key, details, members, prices, delete, permissions."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
import respx
from django.contrib.auth import get_user_model
from django.urls import reverse

from prompts_app.models import CustomPrice, Membership, Role, Workspace
from tests.maxim_spec import validate_request
from tests.conftest import API_KEY, BASE_URL


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr("prompts_app.maxim.client._backoff", lambda attempt: 0)


@pytest.fixture
def maxim():
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


def _prompts(n: int) -> dict:
    items = [
        {"id": f"p{i}", "name": f"P{i}", "description": "", "workspaceId": "ws-1", "createdAt": "", "updatedAt": ""}
        for i in range(n)
    ]
    return {"data": items, "pagination": {"cursor": None, "hasMore": False}}


def url(name: str, workspace: Workspace, *args) -> str:
    return reverse(name, args=[workspace.pk, *args])


HX = {"HX-Request": "true"}


# -- list ------------------------------------------------------------------------------


def test_home_lists_the_users_workspaces_with_role_and_masked_key(
    client_for, workspace, viewer, make_workspace, outsider
):
    make_workspace(owner=outsider, name="Not yours", maxim_id="ws-x")
    html = client_for(viewer).get("/").content.decode()
    assert "Acme" in html and "ws-1" in html and BASE_URL in html and "Viewer" in html
    assert "••••1234" in html and API_KEY not in html
    assert "Not yours" not in html
    assert reverse("workspace_connect") in html


def test_home_without_workspaces_explains_what_to_do(client_for, outsider):
    html = client_for(outsider).get("/").content.decode()
    assert "No workspaces yet" in html and "Connect a workspace" in html and "ask its owner" in html


# -- settings page ------------------------------------------------------------------------


def test_owner_sees_every_management_form(client_for, owner, workspace):
    html = client_for(owner).get(url("workspace_settings", workspace)).content.decode()
    for name in ["workspace_replace_key", "invitation_create", "price_add", "workspace_update", "workspace_test"]:
        assert url(name, workspace) in html
    assert url("workspace_delete", workspace) in html
    assert "••••1234" in html


def test_viewer_sees_no_mutation_or_test_buttons(client_for, viewer, workspace):
    CustomPrice.objects.create(workspace=workspace, model_pattern="llama*", input_usd_per_mtok=1, output_usd_per_mtok=2)
    html = client_for(viewer).get(url("workspace_settings", workspace)).content.decode()
    for name in [
        "workspace_replace_key",
        "invitation_create",
        "price_add",
        "workspace_update",
        "workspace_delete",
        "workspace_test",
    ]:
        assert url(name, workspace) not in html
    assert "Remove" not in html and "Replace key" not in html and "Test connection" not in html
    assert "llama*" in html and "eddie" in html


def test_a_viewer_cannot_spend_the_key_on_a_test(client_for, viewer, workspace, maxim):
    route = maxim.get("/v1/prompts").respond(200, json=_prompts(1))
    assert client_for(viewer).post(url("workspace_test", workspace), headers=HX).status_code == 403
    assert not route.called


def test_editor_sees_price_forms_but_not_member_key_or_delete_forms(client_for, editor, workspace):
    html = client_for(editor).get(url("workspace_settings", workspace)).content.decode()
    assert url("price_add", workspace) in html
    for name in ["workspace_replace_key", "invitation_create", "workspace_delete", "workspace_update"]:
        assert url(name, workspace) not in html


# -- test connection ----------------------------------------------------------------------------


def test_test_connection_reports_how_many_prompts_maxim_shows_and_records_it(client_for, editor, workspace, maxim):
    route = maxim.get("/v1/prompts").respond(200, json=_prompts(3))
    response = client_for(editor).post(url("workspace_test", workspace), headers=HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="ws-connection"')
    assert "Maxim shows 3 prompts" in html
    request = route.calls.last.request
    assert request.url.params["workspaceId"] == "ws-1" and request.headers["x-maxim-api-key"] == API_KEY
    validate_request(
        "GET", "/v1/prompts", None, {k: [v] for k, v in request.url.params.items()}, headers=dict(request.headers)
    )
    workspace.refresh_from_db()
    assert workspace.last_checked_at is not None and workspace.last_check_error == ""


def test_test_connection_shows_the_exact_problem_and_stores_it(client_for, owner, workspace, maxim):
    maxim.get("/v1/prompts").respond(401, json={"error": {"message": "nope"}})
    html = client_for(owner).post(url("workspace_test", workspace), headers=HX).content.decode()
    assert "Maxim rejected the API key" in html
    workspace.refresh_from_db()
    assert "rejected the API key" in workspace.last_check_error


def test_test_connection_without_js_renders_the_whole_page(client_for, owner, workspace, maxim):
    maxim.get("/v1/prompts").mock(side_effect=httpx.ConnectError("refused"))
    response = client_for(owner).post(url("workspace_test", workspace))
    assert response.status_code == 200
    assert "<html" in response.content.decode() and "Could not connect" in response.content.decode()


def test_test_connection_is_post_only(client_for, owner, workspace):
    assert client_for(owner).get(url("workspace_test", workspace)).status_code == 405


# -- replace key ------------------------------------------------------------------------------------


def test_replacing_the_key_verifies_it_with_maxim_before_saving(client_for, owner, workspace, maxim):
    route = maxim.get("/v1/prompts").respond(200, json=_prompts(2))
    response = client_for(owner).post(
        url("workspace_replace_key", workspace), {"api_key": "new-key-5678", "base_url": BASE_URL}, headers=HX
    )
    html = response.content.decode()
    assert route.calls.last.request.headers["x-maxim-api-key"] == "new-key-5678"
    workspace.refresh_from_db()
    assert workspace.get_api_key() == "new-key-5678" and workspace.masked_key == "••••5678"
    assert "••••5678" in html and "new-key-5678" not in html and "verified" in html


def test_a_key_maxim_rejects_is_not_saved_and_the_reason_is_shown(client_for, owner, workspace, maxim):
    maxim.get("/v1/prompts").respond(401)
    response = client_for(owner).post(
        url("workspace_replace_key", workspace), {"api_key": "wrong-key-0000", "base_url": BASE_URL}, headers=HX
    )
    html = response.content.decode()
    assert 'id="id_replace_api_key_error"' in html and "The key was not saved" in html and "wrong-key-0000" not in html
    workspace.refresh_from_db()
    assert workspace.get_api_key() == API_KEY


def test_a_blank_new_key_is_refused_without_calling_maxim(client_for, owner, workspace, maxim):
    route = maxim.get("/v1/prompts")
    response = client_for(owner).post(url("workspace_replace_key", workspace), {"api_key": "  ", "base_url": BASE_URL})
    assert response.status_code == 200 and "cannot be blank" in response.content.decode()
    assert not route.called


# -- details -------------------------------------------------------------------------------------------


def test_owner_renames_without_the_key_when_the_base_url_only_changes_its_spelling(client_for, owner, workspace):
    response = client_for(owner).post(
        url("workspace_update", workspace), {"name": "Acme EU", "base_url": "https://MAXIM.test/"}
    )
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.name, workspace.base_url) == ("Acme EU", "https://maxim.test")


def test_a_new_path_on_the_same_host_needs_the_key_too(client_for, owner, workspace):
    with respx.mock(base_url="https://maxim.test", assert_all_called=False) as maxim:
        route = maxim.get(path__startswith="/").respond(200, json=_prompts(1))
        response = client_for(owner).post(
            url("workspace_update", workspace), {"name": "Acme", "base_url": "https://maxim.test/echo"}
        )
    assert response.status_code == 200 and "Enter the API key again" in response.content.decode()
    assert not route.called
    workspace.refresh_from_db()
    assert workspace.base_url == "https://maxim.test"


def test_owner_moves_to_another_host_with_the_key_verified_there(client_for, owner, workspace):
    with respx.mock(base_url="https://eu.maxim.test") as eu:
        route = eu.get("/v1/prompts").respond(200, json=_prompts(1))
        response = client_for(owner).post(
            url("workspace_update", workspace),
            {"name": "Acme EU", "base_url": "https://EU.maxim.test/", "api_key": "eu-key-9999"},
            headers=HX,
        )
    assert response["HX-Redirect"] == url("workspace_settings", workspace)
    assert route.calls.last.request.headers["x-maxim-api-key"] == "eu-key-9999"
    workspace.refresh_from_db()
    assert (workspace.name, workspace.base_url, workspace.get_api_key()) == (
        "Acme EU",
        "https://eu.maxim.test",
        "eu-key-9999",
    )


def test_a_bad_base_url_keeps_what_was_typed(client_for, owner, workspace):
    response = client_for(owner).post(
        url("workspace_update", workspace), {"name": "Renamed", "base_url": "ftp://x.test"}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200 and "http:// or https://" in html
    assert 'value="Renamed"' in html and 'value="ftp://x.test"' in html
    workspace.refresh_from_db()
    assert workspace.name == "Acme"


# -- members -------------------------------------------------------------------------------------------


def test_owner_invites_rather_than_adds(client_for, owner, workspace, outsider):
    # Inviting never makes anyone a member: they must accept (tests/test_invitations.py).
    response = client_for(owner).post(
        url("invitation_create", workspace), {"invitee": "MALLORY", "role": "editor"}, headers=HX
    )
    assert "Invitation created" in response.content.decode()
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_an_invitation_with_a_space_in_the_name_keeps_what_was_typed(client_for, owner, workspace):
    response = client_for(owner).post(
        url("invitation_create", workspace), {"invitee": "ann smith", "role": "viewer"}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200 and "has no spaces" in html and 'value="ann smith"' in html
    assert 'role="alert"' in html


def test_owner_changes_a_role(client_for, owner, editor, workspace):
    membership = Membership.objects.get(workspace=workspace, user=editor)
    client_for(owner).post(url("member_role", workspace, membership.pk), {"role": "owner"})
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_the_last_owner_cannot_be_demoted_or_removed(client_for, owner, workspace):
    membership = Membership.objects.get(workspace=workspace, user=owner)
    client = client_for(owner)
    html = client.post(url("member_role", workspace, membership.pk), {"role": "viewer"}, headers=HX).content.decode()
    assert "at least one owner" in html
    html = client.post(url("member_remove", workspace, membership.pk), headers=HX).content.decode()
    assert "last owner cannot be removed" in html
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_owner_removes_a_member(client_for, owner, viewer, workspace):
    membership = Membership.objects.get(workspace=workspace, user=viewer)
    response = client_for(owner).post(url("member_remove", workspace, membership.pk))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_an_owner_who_removes_themselves_goes_home(client_for, owner, editor, workspace):
    Membership.objects.filter(workspace=workspace, user=editor).update(role=Role.OWNER)
    mine = Membership.objects.get(workspace=workspace, user=owner)
    response = client_for(owner).post(url("member_remove", workspace, mine.pk))
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_membership_of_another_workspace_is_404(client_for, owner, workspace, make_workspace, outsider):
    other = make_workspace(owner=outsider, maxim_id="ws-other")
    theirs = Membership.objects.get(workspace=other)
    assert client_for(owner).post(url("member_remove", workspace, theirs.pk)).status_code == 404


# -- prices ----------------------------------------------------------------------------------------------


def test_editor_adds_edits_and_deletes_a_custom_price(client_for, editor, workspace):
    client = client_for(editor)
    html = client.post(
        url("price_add", workspace),
        {"model_pattern": " llama3* ", "input_usd_per_mtok": "0", "output_usd_per_mtok": "0.15"},
        headers=HX,
    ).content.decode()
    price = CustomPrice.objects.get(workspace=workspace)
    assert (price.model_pattern, price.input_usd_per_mtok, price.output_usd_per_mtok) == ("llama3*", 0, Decimal("0.15"))
    assert "Added a price for llama3*" in html and html.lstrip().startswith('<section id="ws-prices"')

    prefix = f"p{price.pk}-"
    client.post(
        url("price_update", workspace, price.pk),
        {
            prefix + "model_pattern": "llama3.1*",
            prefix + "input_usd_per_mtok": "1.5",
            prefix + "output_usd_per_mtok": "2",
        },
    )
    price.refresh_from_db()
    assert (price.model_pattern, price.input_usd_per_mtok) == ("llama3.1*", Decimal("1.5"))

    client.post(url("price_delete", workspace, price.pk))
    assert not CustomPrice.objects.exists()


@pytest.mark.parametrize(
    "inp,out,message",
    [
        ("-1", "0", "cannot be negative"),
        ("abc", "0", "Enter a number of US dollars"),
        ("0.1234567", "0", "at most 6 decimals"),
        ("1e400", "0", "Enter a price from 0 to 999999.999999"),
        ("", "0", "required"),
    ],
)
def test_bad_prices_are_explained_and_kept(client_for, editor, workspace, inp, out, message):
    response = client_for(editor).post(
        url("price_add", workspace),
        {"model_pattern": "gpt-x", "input_usd_per_mtok": inp, "output_usd_per_mtok": out},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 200 and message in html and 'value="gpt-x"' in html
    assert not CustomPrice.objects.exists()


def test_a_price_too_large_for_a_number_keeps_what_was_typed(client_for, editor, workspace):
    # A browser's number input turns 1e400 into "", which read as "This field is required".
    html = (
        client_for(editor)
        .post(
            url("price_add", workspace),
            {"model_pattern": "gpt-x", "input_usd_per_mtok": "1e400", "output_usd_per_mtok": "0"},
            headers=HX,
        )
        .content.decode()
    )
    assert 'type="text" name="input_usd_per_mtok" value="1e400"' in html and 'inputmode="decimal"' in html
    assert "This field is required" not in html and "Enter a price from 0 to 999999.999999" in html


def test_a_duplicate_pattern_gets_a_clear_message(client_for, editor, workspace):
    CustomPrice.objects.create(workspace=workspace, model_pattern="llama*", input_usd_per_mtok=1, output_usd_per_mtok=2)
    other = CustomPrice.objects.create(
        workspace=workspace, model_pattern="mistral*", input_usd_per_mtok=1, output_usd_per_mtok=2
    )
    client = client_for(editor)
    html = client.post(
        url("price_add", workspace), {"model_pattern": "llama*", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1"}
    ).content.decode()
    assert "already a price for “llama*”" in html
    prefix = f"p{other.pk}-"
    html = client.post(
        url("price_update", workspace, other.pk),
        {prefix + "model_pattern": "llama*", prefix + "input_usd_per_mtok": "1", prefix + "output_usd_per_mtok": "1"},
        headers=HX,
    ).content.decode()
    assert "already a price for “llama*”" in html and 'value="llama*"' in html
    other.refresh_from_db()
    assert other.model_pattern == "mistral*"


def test_a_price_of_another_workspace_is_404(client_for, editor, workspace, make_workspace, outsider):
    other = make_workspace(owner=outsider, maxim_id="ws-other")
    price = CustomPrice.objects.create(workspace=other, model_pattern="x", input_usd_per_mtok=1, output_usd_per_mtok=1)
    assert client_for(editor).post(url("price_delete", workspace, price.pk)).status_code == 404
    assert CustomPrice.objects.filter(pk=price.pk).exists()


# -- delete -----------------------------------------------------------------------------------------------


def test_deleting_a_workspace_asks_first_then_deletes(client_for, owner, workspace):
    client = client_for(owner)
    page = client.get(url("workspace_delete", workspace))
    assert "Yes, delete Acme" in page.content.decode()
    assert Workspace.objects.filter(pk=workspace.pk).exists()
    response = client.post(url("workspace_delete", workspace))
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


# -- permissions --------------------------------------------------------------------------------------------

GET_URLS = ["workspace_settings", "workspace_delete"]
POST_URLS = [
    "workspace_update",
    "workspace_test",
    "workspace_replace_key",
    "invitation_create",
    "price_add",
    "workspace_delete",
]


def _every_post_url(workspace: Workspace) -> list[str]:
    membership = workspace.memberships.first()
    price = CustomPrice.objects.get_or_create(
        workspace=workspace, model_pattern="p*", defaults={"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}
    )[0]
    return [url(n, workspace) for n in POST_URLS] + [
        url("member_role", workspace, membership.pk),
        url("member_remove", workspace, membership.pk),
        url("price_update", workspace, price.pk),
        url("price_delete", workspace, price.pk),
    ]


def test_an_outsider_gets_404_on_every_workspace_url(client_for, outsider, workspace, maxim):
    client = client_for(outsider)
    for name in GET_URLS:
        assert client.get(url(name, workspace)).status_code == 404, name
    for target in _every_post_url(workspace):
        assert client.post(target, {"role": "viewer", "api_key": "x-1"}).status_code == 404, target
    assert Workspace.objects.filter(pk=workspace.pk).exists()
    assert not maxim.calls


def test_a_viewer_gets_403_on_every_mutation(client_for, viewer, workspace, maxim):
    client = client_for(viewer)
    mutations = [t for t in _every_post_url(workspace) if t != url("workspace_test", workspace)]
    for target in mutations:
        response = client.post(target, {"role": "owner", "api_key": "x-1", "username": "vera"})
        assert response.status_code == 403, target
        assert "You cannot do that here" in response.content.decode()
    assert client.get(url("workspace_delete", workspace)).status_code == 403
    assert Membership.objects.get(workspace=workspace, user=viewer).role == Role.VIEWER
    assert not maxim.calls


def test_an_editor_cannot_manage_members_key_details_or_delete(client_for, editor, workspace, maxim):
    client = client_for(editor)
    membership = workspace.memberships.get(user=editor)
    for target in [
        url("workspace_replace_key", workspace),
        url("invitation_create", workspace),
        url("workspace_update", workspace),
        url("member_role", workspace, membership.pk),
        url("member_remove", workspace, membership.pk),
        url("workspace_delete", workspace),
    ]:
        assert client.post(target, {"role": "owner"}).status_code == 403, target
    assert membership.role == Role.EDITOR and not maxim.calls


def test_anonymous_users_are_sent_to_login_from_every_workspace_url(client, workspace):
    for target in ["/", reverse("workspace_connect"), reverse("workspace_connect_pick")] + [
        url(n, workspace) for n in GET_URLS
    ]:
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), target
    for target in _every_post_url(workspace):
        assert client.post(target)["Location"].startswith("/login/"), target
    assert get_user_model().objects.count() == 3


# -- accounts ---------------------------------------------------------------------------------------------


def test_logging_in_and_out_works(client, owner):
    page = client.get("/login/")
    assert page.status_code == 200 and 'name="username"' in page.content.decode()
    response = client.post("/login/", {"username": "olivia", "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post("/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


def _app_paths() -> list[str]:
    """Every URL the app defines, with placeholder arguments filled in."""
    from django.urls import URLPattern, get_resolver

    paths = []
    for pattern in get_resolver("prompts_app.urls").url_patterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {
            name: ("1" if conv.__class__.__name__ == "IntConverter" else "x")
            for name, conv in pattern.pattern.converters.items()
        }
        paths.append(reverse(pattern.name, kwargs=kwargs) if pattern.name else None)
    return [p for p in paths if p]


def test_every_app_url_sends_anonymous_users_to_login(client, workspace):
    paths = _app_paths()
    assert len(paths) >= 14
    for target in paths:
        for method in (client.get, client.post):
            response = method(target)
            assert response.status_code == 302, (method.__name__, target, response.status_code)
            assert response["Location"].startswith("/login/?next="), target


def test_changing_the_base_url_to_one_already_used_for_the_same_workspace_is_refused(
    client_for, owner, workspace, make_workspace
):
    make_workspace(owner=owner, name="Acme copy", maxim_id="ws-1", base_url="https://eu.maxim.test")
    response = client_for(owner).post(
        url("workspace_update", workspace), {"name": "Acme", "base_url": "https://eu.maxim.test"}
    )
    assert response.status_code == 200 and "“Acme copy” already uses this Maxim workspace" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.base_url == BASE_URL


def test_an_owner_who_demotes_themselves_reloads_the_page_without_owner_controls(client_for, owner, editor, workspace):
    Membership.objects.filter(workspace=workspace, user=editor).update(role=Role.OWNER)
    mine = Membership.objects.get(workspace=workspace, user=owner)
    client = client_for(owner)
    response = client.post(url("member_role", workspace, mine.pk), {"role": "editor"}, headers=HX)
    assert response["HX-Redirect"] == url("workspace_settings", workspace)
    assert url("invitation_create", workspace) not in client.get(url("workspace_settings", workspace)).content.decode()


def test_the_settings_page_has_no_duplicate_ids(client_for, owner, workspace):
    html = client_for(owner).get(url("workspace_settings", workspace)).content.decode()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_a_new_name_shows_in_the_heading_and_the_breadcrumbs_at_once(client_for, owner, workspace):
    """New-user trial: "Saved the name and base URL", and the page kept the old name above it."""
    data = {"name": "Support team", "base_url": workspace.base_url}
    url = reverse("workspace_update", args=[workspace.pk])
    answer = client_for(owner).post(url, data, headers={"HX-Request": "true"})
    assert answer.headers["HX-Redirect"] == reverse("workspace_settings", args=[workspace.pk])  # the whole page
    page = client_for(owner).get(answer.headers["HX-Redirect"]).content.decode()
    assert "<h1>Support team " in page and "Saved the name and base URL." in page
    same = client_for(owner).post(url, data, headers={"HX-Request": "true"})  # nothing renamed: the section
    assert "HX-Redirect" not in same.headers and "Saved the name and base URL." in same.content.decode()
