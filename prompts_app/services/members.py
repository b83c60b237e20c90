"""Members of a workspace: invitations an owner creates and the invited person accepts,
role changes and removals. Adding someone never tells the owner whether an account exists."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from prompts_app.models import Invitation, Membership, Role, Workspace
from prompts_app.services import audit
from prompts_app.services.workspaces import WorkspaceError

INVITATION_DAYS = 7


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # shown once, in the link the owner may hand over; only its hash is stored


def invite(workspace: Workspace, *, invitee: str, role: str, by: Any) -> NewInvitation:
    """Create a pending invitation for a username or email address (or, empty, for whoever gets the link).

    Nothing here looks the name up: the same answer whether or not such an account exists."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        workspace=workspace,
        invitee=invitee.strip(),
        role=role,
        token_hash=token_hash(token),
        invited_by=by,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    target = invitation.invitee or "anyone with the link"
    audit.record(workspace, actor=by, action=audit.Action.INVITATION_CREATED, target=target, detail={"role": role})
    return NewInvitation(invitation, token)


def pending_for_workspace(workspace: Workspace):
    return workspace.invitations.filter(status=Invitation.Status.PENDING, expires_at__gt=timezone.now())


def pending_for_user(user: Any):
    """Open invitations bound to this account (by username or email), newest first."""
    names = Q(invitee__iexact=user.get_username())
    if getattr(user, "email", ""):
        names |= Q(invitee__iexact=user.email)
    candidates = (
        Invitation.objects.filter(names, status=Invitation.Status.PENDING, expires_at__gt=timezone.now())
        .exclude(workspace__memberships__user=user)
        .select_related("workspace", "invited_by")
    )
    return [invitation for invitation in candidates if invitation.is_for(user)]


def find_open(*, token: str | None = None, pk: int | None = None, user: Any) -> Invitation | None:
    """The invitation this user may answer: by its link's token, or (bound to them) by id. None otherwise,
    whatever the reason (unknown, used, expired, revoked, for someone else), so nothing is revealed."""
    if token:
        invitation = (
            Invitation.objects.select_related("workspace", "invited_by").filter(token_hash=token_hash(token)).first()
        )
    elif pk is not None:
        invitation = Invitation.objects.select_related("workspace", "invited_by").filter(pk=pk).first()
        if invitation is not None and not invitation.invitee:
            return None  # an unbound invitation is answered only with its link
    else:
        return None
    if invitation is None or not invitation.is_open:
        return None
    if invitation.invitee and not invitation.is_for(user):
        return None
    return invitation


@transaction.atomic
def accept(invitation: Invitation, user: Any) -> Membership:
    """Make `user` a member with the invited role; the invitation cannot be used again."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open or (invitation.invitee and not invitation.is_for(user)):
        raise WorkspaceError("This invitation is no longer valid.")
    membership, created = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    _close(invitation, Invitation.Status.ACCEPTED, user)
    target = user.get_username()
    audit.record(
        invitation.workspace,
        actor=user,
        action=audit.Action.INVITATION_ACCEPTED,
        target=target,
        detail={"role": invitation.role, "invited": invitation.invitee or "link"},
    )
    if created:
        audit.record(
            invitation.workspace,
            actor=user,
            action=audit.Action.MEMBER_JOINED,
            target=target,
            detail={"role": membership.role},
        )
    return membership


@transaction.atomic
def decline(invitation: Invitation, user: Any) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.is_open:
        _close(invitation, Invitation.Status.DECLINED, user)
        audit.record(
            invitation.workspace, actor=user, action=audit.Action.INVITATION_DECLINED, target=user.get_username()
        )


@transaction.atomic
def revoke(invitation: Invitation, *, by: Any) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status != Invitation.Status.PENDING:
        raise WorkspaceError("This invitation was already answered or revoked.")
    _close(invitation, Invitation.Status.REVOKED, by)
    audit.record(
        invitation.workspace,
        actor=by,
        action=audit.Action.INVITATION_REVOKED,
        target=invitation.invitee or "anyone with the link",
        detail={"role": invitation.role},
    )


def _close(invitation: Invitation, status: str, user: Any) -> None:
    invitation.status = status
    invitation.responded_by = user
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_by", "responded_at"])


# -- roles -----------------------------------------------------------------------------------


def _owner_count(workspace: Workspace) -> int:
    return workspace.memberships.filter(role=Role.OWNER).count()


@transaction.atomic
def change_role(membership: Membership, role: str, *, by: Any = None) -> Membership:
    Workspace.objects.select_for_update().filter(pk=membership.workspace_id).first()
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.workspace) <= 1:
        raise WorkspaceError("A workspace needs at least one owner; make someone else owner first.", field="role")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    if before != role:
        audit.record(
            membership.workspace,
            actor=by,
            action=audit.Action.MEMBER_ROLE,
            target=membership.user.get_username(),
            detail={"from": before, "to": role},
        )
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, by: Any = None) -> None:
    Workspace.objects.select_for_update().filter(pk=membership.workspace_id).first()
    if membership.role == Role.OWNER and _owner_count(membership.workspace) <= 1:
        raise WorkspaceError("The last owner cannot be removed; make someone else owner first.")
    membership.delete()
    audit.record(
        membership.workspace,
        actor=by,
        action=audit.Action.MEMBER_REMOVED,
        target=membership.user.get_username(),
        detail={"role": membership.role},
    )
