"""Members join only by accepting an invitation, and inviting never reveals whether an account exists."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import Invitation, Membership, Role

HX = {"HX-Request": "true"}


def invite(client, workspace, invitee: str, role: str = "editor", htmx: bool = True):
    return client.post(
        reverse("invitation_create", args=[workspace.pk]),
        {"invitee": invitee, "role": role},
        headers=HX if htmx else {},
    )


def link_in(response) -> str:
    match = re.search(r'value="(http://testserver/invitations/[^"/]+/)"', response.content.decode())
    assert match, "the page shows the invitation link"
    return match.group(1).removeprefix("http://testserver")


def normalised(response) -> str:
    """The page with what legitimately differs per invitation (link, times, names) taken out."""
    html = response.content.decode()
    html = re.sub(r"/invitations/[^\"/]+/", "/invitations/X/", html)
    html = re.sub(r"csrfmiddlewaretoken\" value=\"[^\"]+", "", html)
    html = re.sub(r"\d{1,2} \w{3}( \d{4})? \d\d:\d\d", "", html)
    html = re.sub(r"/invitations/\d+/revoke/", "", html)
    return html.replace("mallory", "NAME").replace("nobody-here", "NAME")


def test_inviting_does_not_reveal_whether_an_account_exists(client_for, owner, workspace, outsider):
    client = client_for(owner)
    existing = invite(client, workspace, "mallory")
    Invitation.objects.all().delete()
    missing = invite(client, workspace, "nobody-here")
    assert existing.status_code == missing.status_code == 200
    assert normalised(existing) == normalised(missing)
    assert "If an account with that name or email exists" in existing.content.decode()


def test_an_invited_person_is_not_a_member_until_they_accept(client_for, owner, workspace, outsider, client):
    link = link_in(invite(client_for(owner), workspace, "mallory", role="editor"))
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    client.force_login(outsider)
    assert reverse("workspace_settings", args=[workspace.pk])
    assert client.get(reverse("workspace_settings", args=[workspace.pk])).status_code == 404
    page = client.get(link)
    assert page.status_code == 200 and "Join Acme" in page.content.decode()
    invitation = Invitation.objects.get()
    token = link.split("/")[-2]
    response = client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": token})
    assert response.status_code == 302
    assert Membership.objects.get(workspace=workspace, user=outsider).role == Role.EDITOR
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.ACCEPTED and invitation.responded_by == outsider


def test_the_invited_person_sees_it_on_their_workspaces_page_and_can_decline(
    client_for, owner, workspace, outsider, client
):
    invite(client_for(owner), workspace, "Mallory")
    client.force_login(outsider)
    home = client.get(reverse("home")).content.decode()
    assert "Invitations for you" in home and "Acme" in home
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "decline"})
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    assert "Invitations for you" not in client.get(reverse("home")).content.decode()


def test_an_invitation_by_email_binds_to_that_account(client_for, owner, workspace, make_user, client):
    ann = make_user("ann", email="Ann@Example.com")
    link = link_in(invite(client_for(owner), workspace, "ann@example.com", role="viewer"))
    client.force_login(ann)
    assert client.get(link).status_code == 200
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept"})
    assert Membership.objects.get(workspace=workspace, user=ann).role == Role.VIEWER


def test_someone_else_cannot_use_an_invitation_bound_to_another_account(
    client_for, owner, workspace, outsider, make_user, client
):
    link = link_in(invite(client_for(owner), workspace, "mallory", role="owner"))
    eve = make_user("eve")
    client.force_login(eve)
    assert client.get(link).status_code == 404
    invitation = Invitation.objects.get()
    token = link.split("/")[-2]
    response = client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": token})
    assert response.status_code == 404
    assert not Membership.objects.filter(workspace=workspace, user=eve).exists()
    assert Invitation.objects.get().status == Invitation.Status.PENDING


def test_an_unbound_invitation_needs_its_token(client_for, owner, workspace, make_user, client):
    link = link_in(invite(client_for(owner), workspace, "", role="viewer"))
    eve = make_user("eve")
    client.force_login(eve)
    invitation = Invitation.objects.get()
    # Guessing ids is no use without the link's token.
    for data in ({"answer": "accept"}, {"answer": "accept", "token": "x" * 43}):
        assert client.post(reverse("invitation_answer", args=[invitation.pk]), data).status_code == 404
    assert not Membership.objects.filter(workspace=workspace, user=eve).exists()
    token = link.split("/")[-2]
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": token})
    assert Membership.objects.filter(workspace=workspace, user=eve, role=Role.VIEWER).exists()


def test_an_invitation_works_once(client_for, owner, workspace, make_user, client):
    link = link_in(invite(client_for(owner), workspace, "", role="editor"))
    token = link.split("/")[-2]
    invitation = Invitation.objects.get()
    first, second = make_user("first"), make_user("second")
    client.force_login(first)
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": token})
    client.force_login(second)
    assert client.get(link).status_code == 404
    assert (
        client.post(
            reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": token}
        ).status_code
        == 404
    )
    assert not Membership.objects.filter(workspace=workspace, user=second).exists()


def test_an_expired_invitation_cannot_be_accepted(client_for, owner, workspace, outsider, client):
    link = link_in(invite(client_for(owner), workspace, "mallory"))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(outsider)
    page = client.get(link)
    assert page.status_code == 404 and 'role="alert"' in page.content.decode()
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept"})
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_an_owner_revokes_a_pending_invitation(client_for, owner, workspace, outsider, client):
    owner_client = client_for(owner)
    link = link_in(invite(owner_client, workspace, "mallory"))
    invitation = Invitation.objects.get()
    html = owner_client.post(
        reverse("invitation_revoke", args=[workspace.pk, invitation.pk]), headers=HX
    ).content.decode()
    assert "Revoked the invitation for mallory" in html
    client.force_login(outsider)
    assert client.get(link).status_code == 404
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept"})
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_only_the_link_token_is_secret_and_it_is_not_stored(client_for, owner, workspace):
    link = link_in(invite(client_for(owner), workspace, "mallory"))
    token = link.split("/")[-2]
    assert len(token) >= 40
    assert not Invitation.objects.filter(token_hash=token).exists()
    assert token not in str(list(Invitation.objects.values()))


@pytest.mark.parametrize("who", ["editor", "viewer", "outsider"])
def test_only_owners_invite_or_revoke(client_for, owner, workspace, who, request):
    invite(client_for(owner), workspace, "someone")
    invitation = Invitation.objects.get()
    client = client_for(request.getfixturevalue(who))
    expected = 404 if who == "outsider" else 403
    assert invite(client, workspace, "friend", role="owner").status_code == expected
    assert client.post(reverse("invitation_revoke", args=[workspace.pk, invitation.pk])).status_code == expected
    assert Invitation.objects.count() == 1 and Invitation.objects.get().status == Invitation.Status.PENDING


def test_an_invitation_of_another_workspace_cannot_be_revoked(client_for, owner, workspace, make_workspace, outsider):
    other = make_workspace(owner=outsider, maxim_id="ws-other")
    invite(client_for(outsider), other, "olivia")
    theirs = Invitation.objects.get()
    response = client_for(owner).post(reverse("invitation_revoke", args=[workspace.pk, theirs.pk]))
    assert response.status_code == 404


def test_without_javascript_the_page_shows_the_link_too(client_for, owner, workspace):
    response = invite(client_for(owner), workspace, "mallory", htmx=False)
    assert response.status_code == 200 and "<html" in response.content.decode()
    assert link_in(response)


def test_accepting_when_already_a_member_keeps_the_role(client_for, owner, workspace, viewer, client):
    invite(client_for(owner), workspace, "vera", role="owner")
    client.force_login(viewer)
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept"})
    assert Membership.objects.get(workspace=workspace, user=viewer).role == Role.VIEWER


@pytest.mark.parametrize("other_name", ["BOB", "Bob", "bob "])
def test_an_account_whose_name_differs_only_in_case_cannot_take_the_invitation(
    client_for, owner, workspace, make_user, client, other_name
):
    make_user("bob")
    link = link_in(invite(client_for(owner), workspace, "bob", role="editor"))
    impostor = make_user(other_name)
    client.force_login(impostor)
    assert client.get(link).status_code == 404
    invitation = Invitation.objects.get()
    client.post(reverse("invitation_answer", args=[invitation.pk]), {"answer": "accept", "token": link.split("/")[-2]})
    assert not Membership.objects.filter(workspace=workspace, user=impostor).exists()


def test_an_email_shared_by_two_accounts_binds_to_neither(client_for, owner, workspace, make_user, client):
    first = make_user("ann", email="ann@example.test")
    make_user("ann2", email="ANN@example.test")
    link = link_in(invite(client_for(owner), workspace, "ann@example.test", role="viewer"))
    client.force_login(first)
    assert client.get(link).status_code == 404
