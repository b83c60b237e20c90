"""One `get_<thing>_for_user()` helper per owned resource, called first in every view.

Someone outside the workspace gets a 404 (the thing might as well not exist);
a member whose role is too low for the action gets a 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from prompts_app.models import (
    Comparison,
    Membership,
    Prompt,
    PromptVersion,
    Role,
    Run,
    TestCase,
    TestSet,
    Workspace,
)


def membership_for(request: HttpRequest, workspace: Workspace, role: str = Role.VIEWER) -> Membership:
    membership = Membership.objects.filter(workspace=workspace, user=request.user).first()
    if membership is None:
        raise Http404("No such workspace")
    if not membership.allows(role):
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role in {workspace.name}.")
    return membership


def get_workspace_for_user(request: HttpRequest, workspace_id: int, role: str = Role.VIEWER) -> Workspace:
    workspace = get_object_or_404(Workspace, pk=workspace_id)
    request.membership = membership_for(request, workspace, role)
    return workspace


def get_prompt_for_user(request: HttpRequest, prompt_id: int, role: str = Role.VIEWER) -> Prompt:
    prompt = get_object_or_404(Prompt.objects.select_related("workspace"), pk=prompt_id)
    request.membership = membership_for(request, prompt.workspace, role)
    return prompt


def get_version_for_user(request: HttpRequest, version_id: int, role: str = Role.VIEWER) -> PromptVersion:
    version = get_object_or_404(PromptVersion.objects.select_related("prompt__workspace"), pk=version_id)
    request.membership = membership_for(request, version.prompt.workspace, role)
    return version


def get_run_for_user(request: HttpRequest, run_id: int, role: str = Role.VIEWER) -> Run:
    run = get_object_or_404(Run.objects.select_related("workspace", "prompt", "version", "user"), pk=run_id)
    request.membership = membership_for(request, run.workspace, role)
    return run


def get_comparison_for_user(request: HttpRequest, comparison_id: int, role: str = Role.VIEWER) -> Comparison:
    comparison = get_object_or_404(Comparison.objects.select_related("workspace"), pk=comparison_id)
    request.membership = membership_for(request, comparison.workspace, role)
    return comparison


def get_test_set_for_user(request: HttpRequest, test_set_id: int, role: str = Role.VIEWER) -> TestSet:
    test_set = get_object_or_404(TestSet.objects.select_related("workspace"), pk=test_set_id)
    request.membership = membership_for(request, test_set.workspace, role)
    return test_set


def get_case_for_user(request: HttpRequest, case_id: int, role: str = Role.VIEWER) -> TestCase:
    case = get_object_or_404(TestCase.objects.select_related("test_set__workspace"), pk=case_id)
    request.membership = membership_for(request, case.test_set.workspace, role)
    return case


def user_workspaces(user):
    return Workspace.objects.filter(memberships__user=user)
