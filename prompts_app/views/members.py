"""Members of a workspace: owners invite (never add) people, change roles and remove
members; the invited person opens the link or their Workspaces page and accepts or declines."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from prompts_app.forms.members import AnswerForm, InviteForm, RoleForm
from prompts_app.models import Role
from prompts_app.services import members as services
from prompts_app.services.workspaces import WorkspaceError
from prompts_app.views.access import get_workspace_for_user
from prompts_app.views.workspaces import _redirect, _section

SECTION = "ws-members"  # a partial of workspaces/settings.html


@login_required
@require_POST
def invitation_create(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _section(request, workspace, SECTION, invite_form=form)
    new = services.invite(workspace, **form.cleaned_data, by=request.user)
    link = request.build_absolute_uri(reverse("invitation_open", args=[new.token]))
    # Rendered, not redirected: the link is shown this once and must not sit in a flash message.
    return _section(request, workspace, SECTION, invite_link=link, invited=new.invitation)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, workspace_id: int, invitation_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    invitation = get_object_or_404(workspace.invitations, pk=invitation_id)
    try:
        services.revoke(invitation, by=request.user)
    except WorkspaceError as exc:
        return _section(request, workspace, SECTION, member_error=exc.message)
    return _section(
        request, workspace, SECTION, saved=f"Revoked the invitation for {invitation.invitee or 'the link'}."
    )


@login_required
@require_POST
def member_role(request: HttpRequest, workspace_id: int, membership_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    membership = get_object_or_404(workspace.memberships, pk=membership_id)
    form = RoleForm(request.POST)
    error = "Pick owner, editor or viewer."
    if form.is_valid():
        try:
            services.change_role(membership, form.cleaned_data["role"], by=request.user)
        except WorkspaceError as exc:
            error = exc.message
        else:
            if membership.pk == request.membership.pk:  # demoted themselves: the whole page changes
                return _redirect(request, reverse("workspace_settings", args=[workspace.pk]))
            return _section(request, workspace, SECTION, saved=f"{membership.user} is now {membership.role}.")
    return _section(request, workspace, SECTION, member_error=error)


@login_required
@require_POST
def member_remove(request: HttpRequest, workspace_id: int, membership_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    membership = get_object_or_404(workspace.memberships, pk=membership_id)
    try:
        services.remove_member(membership, by=request.user)
    except WorkspaceError as exc:
        return _section(request, workspace, SECTION, member_error=exc.message)
    if membership.user_id == request.user.pk:
        return _redirect(request, reverse("home"))  # removed themselves: nothing left to see here
    return _section(request, workspace, SECTION, saved=f"Removed {membership.user}.")


# -- the invited person ------------------------------------------------------------------------


@login_required
def invitation_open(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.find_open(token=token, user=request.user)
    status = 200 if invitation else 404
    return render(
        request, "prompts_app/members/invitation.html", {"invitation": invitation, "token": token}, status=status
    )


@login_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: int) -> HttpResponse:
    form = AnswerForm(request.POST)
    invitation = services.find_open(token=request.POST.get("token", "")[:100], user=request.user) or services.find_open(
        pk=invitation_id, user=request.user
    )
    if invitation is None or invitation.pk != invitation_id or not form.is_valid():
        return render(request, "prompts_app/members/invitation.html", {"invitation": None}, status=404)
    workspace = invitation.workspace
    try:
        if form.cleaned_data["answer"] == "decline":
            services.decline(invitation, request.user)
            messages.success(request, f"Declined the invitation to {workspace.name}.")
            return redirect("home")
        membership = services.accept(invitation, request.user)
    except WorkspaceError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    messages.success(request, f"You are now a member of {workspace.name} ({membership.get_role_display().lower()}).")
    return redirect("workspace_settings", workspace.pk)


ws = "workspaces/<int:workspace_id>/settings/"
urlpatterns = [
    path(ws + "invitations/", invitation_create, name="invitation_create"),
    path(ws + "invitations/<int:invitation_id>/revoke/", invitation_revoke, name="invitation_revoke"),
    path(ws + "members/<int:membership_id>/role/", member_role, name="member_role"),
    path(ws + "members/<int:membership_id>/remove/", member_remove, name="member_remove"),
    path("invitations/<int:invitation_id>/answer/", invitation_answer, name="invitation_answer"),
    path("invitations/<str:token>/", invitation_open, name="invitation_open"),
]
