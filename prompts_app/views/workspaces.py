from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from prompts_app.models import Membership


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    return render(request, "prompts_app/workspaces/list.html", {"memberships": memberships, "nav": "workspaces"})


urlpatterns = [
    path("", home, name="home"),
]
