"""The audit trail: what owners can trace, who may read it, and that no key ever lands in it."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
import respx
from django.test import Client
from django.urls import reverse

from prompts_app.models import AuditEvent, CustomPrice, Invitation, Membership
from prompts_app.services import audit
from prompts_app.services import workspaces as ws_services
from tests.conftest import API_KEY, BASE_URL, VERSIONS_URL, builder_form_data, builder_url, created_answer

HX = {"HX-Request": "true"}
NEW_KEY = "new-key-5678"


def actions(workspace) -> list[str]:
    return list(AuditEvent.objects.filter(workspace=workspace).order_by("id").values_list("action", flat=True))


def _prompts() -> dict:
    return {"data": [], "pagination": {"cursor": None, "hasMore": False}}


def test_connecting_replacing_the_key_and_changing_the_base_url_are_recorded_without_the_key(client_for, owner):
    pending = ws_services.PendingConnection(BASE_URL, API_KEY, [("ws-9", "Nine")])
    workspace = ws_services.connect_workspace(user=owner, pending=pending, maxim_id="ws-9", name="Nine")
    client = client_for(owner)
    with respx.mock(base_url=BASE_URL) as maxim:
        maxim.get("/v1/prompts").respond(200, json=_prompts())
        client.post(
            reverse("workspace_replace_key", args=[workspace.pk]),
            {"api_key": NEW_KEY, "base_url": BASE_URL},
            headers=HX,
        )
    with respx.mock(base_url="https://eu.maxim.test") as maxim:
        maxim.get("/v1/prompts").respond(200, json=_prompts())
        client.post(
            reverse("workspace_update", args=[workspace.pk]),
            {"name": "Nine", "base_url": "https://eu.maxim.test", "api_key": NEW_KEY},
            headers=HX,
        )
    client.post(
        reverse("workspace_update", args=[workspace.pk]),
        {"name": "Nine again", "base_url": "https://eu.maxim.test"},
        headers=HX,
    )
    assert actions(workspace) == ["key.connected", "key.replaced", "workspace.base_url"]
    changed = AuditEvent.objects.get(action="workspace.base_url")
    assert changed.detail == {"from": BASE_URL, "to": "https://eu.maxim.test"}
    assert changed.actor == owner
    # What a person reads in the trail (timestamps left out: "1234" can be in their microseconds).
    everything = json.dumps(list(AuditEvent.objects.values("actor_name", "action", "target", "detail")))
    assert API_KEY not in everything and NEW_KEY not in everything and API_KEY[-4:] not in everything


def test_invitations_members_and_roles_are_recorded(client_for, owner, editor, viewer, workspace, outsider):
    owner_client = client_for(owner)
    owner_client.post(
        reverse("invitation_create", args=[workspace.pk]), {"invitee": "mallory", "role": "viewer"}, headers=HX
    )
    owner_client.post(
        reverse("invitation_create", args=[workspace.pk]), {"invitee": "someone", "role": "viewer"}, headers=HX
    )
    revoked = Invitation.objects.get(invitee="someone")
    owner_client.post(reverse("invitation_revoke", args=[workspace.pk, revoked.pk]), headers=HX)
    client = Client()
    client.force_login(outsider)
    client.post(reverse("invitation_answer", args=[Invitation.objects.get(invitee="mallory").pk]), {"answer": "accept"})
    membership = Membership.objects.get(workspace=workspace, user=editor)
    owner_client.post(reverse("member_role", args=[workspace.pk, membership.pk]), {"role": "viewer"}, headers=HX)
    owner_client.post(reverse("member_remove", args=[workspace.pk, membership.pk]), headers=HX)
    assert actions(workspace) == [
        "invitation.created",
        "invitation.created",
        "invitation.revoked",
        "invitation.accepted",
        "member.joined",
        "member.role",
        "member.removed",
    ]
    role = AuditEvent.objects.get(action="member.role")
    assert (role.target, role.detail, role.actor_name) == ("eddie", {"from": "editor", "to": "viewer"}, "olivia")
    joined = AuditEvent.objects.get(action="member.joined")
    assert (joined.target, joined.actor) == ("mallory", outsider)


def test_prices_versions_deployments_and_run_exports_are_recorded(
    client_for, owner, editor, workspace, prompt, version
):
    client = client_for(editor)
    client.post(
        reverse("price_add", args=[workspace.pk]),
        {"model_pattern": "llama*", "input_usd_per_mtok": "0.1", "output_usd_per_mtok": "0.2"},
        headers=HX,
    )
    price = CustomPrice.objects.get()
    client.post(
        reverse("price_update", args=[workspace.pk, price.pk]),
        {
            f"p{price.pk}-model_pattern": "llama*",
            f"p{price.pk}-input_usd_per_mtok": "0.3",
            f"p{price.pk}-output_usd_per_mtok": "0.2",
        },
        headers=HX,
    )
    client.post(reverse("price_delete", args=[workspace.pk, price.pk]), headers=HX)
    with respx.mock() as mock:
        mock.post(VERSIONS_URL).mock(
            side_effect=lambda r: httpx.Response(200, json=created_answer(json.loads(r.content)))
        )
        client.post(builder_url(prompt), builder_form_data(action="create"))
        answer = {"data": {"id": "dep-1", "promptId": "prompt-1", "versionId": "version-1", "status": "active"}}
        mock.post(f"{BASE_URL}/v1/prompts/deploy").mock(return_value=httpx.Response(200, json=answer))
        client.post(
            f"/versions/{version.pk}/deploy/",
            {
                "c-TOTAL_FORMS": "1",
                "c-INITIAL_FORMS": "1",
                "action": "deploy",
                "c-0-variable": "env",
                "c-0-operator": "=",
                "c-0-value": "prod",
            },
        )
    b"".join(client.get(reverse("run_export_csv")).streaming_content)
    assert actions(workspace) == [
        "price.saved",
        "price.saved",
        "price.deleted",
        "version.created",
        "version.deployed",
        "runs.exported",
    ]
    saved = AuditEvent.objects.filter(action="price.saved").order_by("id").last()
    assert saved.detail == {"input_usd_per_mtok": "0.3", "output_usd_per_mtok": "0.2"}
    assert AuditEvent.objects.get(action="version.deployed").target == "Support reply v1"


def test_details_that_look_like_secrets_are_dropped(workspace, owner):
    event = audit.record(
        workspace, actor=owner, action=audit.Action.KEY_REPLACED, detail={"api_key": "x", "token": "y", "n": 1}
    )
    assert event.detail == {"n": 1}


def test_owners_see_the_trail_newest_first_in_pages(client_for, owner, workspace):
    for n in range(60):
        audit.record(workspace, actor=owner, action=audit.Action.PRICE_DELETED, target=f"model-{n:02d}")
    client = client_for(owner)
    html = client.get(reverse("audit_log", args=[workspace.pk])).content.decode()
    assert 'aria-label="Audit events"' in html
    assert html.index("model-59") < html.index("model-58") and "model-09" not in html
    older = client.get(reverse("audit_log", args=[workspace.pk]) + "?page=2").content.decode()
    assert "model-09" in older and "model-59" not in older
    assert client.get(reverse("audit_log", args=[workspace.pk]) + "?page=junk").status_code == 200
    assert (
        reverse("audit_log", args=[workspace.pk])
        in client.get(reverse("workspace_settings", args=[workspace.pk])).content.decode()
    )


def test_the_csv_export_has_every_event_and_neutralises_formulas(client_for, owner, workspace):
    audit.record(workspace, actor=owner, action=audit.Action.PRICE_DELETED, target='=HYPERLINK("http://x")')
    response = client_for(owner).get(reverse("audit_export", args=[workspace.pk]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "actor", "action", "target", "detail"]
    assert rows[1][1:4] == ["olivia", "price.deleted", '\'=HYPERLINK("http://x")']


@pytest.mark.parametrize("who,status", [("editor", 403), ("viewer", 403), ("outsider", 404)])
def test_only_owners_read_or_export_the_trail(client_for, workspace, who, status, request):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("audit_log", args=[workspace.pk])).status_code == status
    assert client.get(reverse("audit_export", args=[workspace.pk])).status_code == status
