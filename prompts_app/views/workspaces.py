"""Workspaces: the home list, connecting one in two steps, and its settings page
(connection, members, custom prices, delete). Sections of the settings page are
partials of settings.html that the htmx views return."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from prompts_app.forms.members import InviteForm
from prompts_app.forms.workspaces import (
    ConnectKeyForm,
    PickWorkspaceForm,
    PriceForm,
    ReplaceKeyForm,
    WorkspaceDetailsForm,
)
from prompts_app.models import Membership, Role, Workspace
from prompts_app.selectors import history
from prompts_app.services import audit, members
from prompts_app.services import workspaces as services
from prompts_app.views.access import get_workspace_for_user

T = "prompts_app/workspaces/"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("workspace").order_by("workspace__name")
    context = {
        "memberships": memberships,
        "overview": history.overview(request.user),
        "nav": "workspaces",
        "my_invitations": members.pending_for_user(request.user),
    }
    return render(request, T + "list.html", context)


# -- connect ---------------------------------------------------------------------------


@login_required
@sensitive_post_parameters("api_key")
@sensitive_variables()
def workspace_connect(request: HttpRequest) -> HttpResponse:
    form = ConnectKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pending = services.discover_workspaces(**form.cleaned_data)
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            services.stash_pending(request.session, pending)
            if request.htmx:
                return _render_pick(request, PickWorkspaceForm(choices=pending.workspaces), pending, push=True)
            return redirect("workspace_connect_pick")
    template = T + ("connect.html#connect-key" if request.htmx else "connect.html")
    return render(request, template, {"form": form, "step": 1, "nav": "workspaces"})


@login_required
@sensitive_variables()
def workspace_connect_pick(request: HttpRequest) -> HttpResponse:
    pending = services.load_pending(request.session)
    if pending is None:
        messages.warning(request, "For your safety the key is only kept for a few minutes: enter the key again.")
        return _redirect(request, reverse("workspace_connect"))
    form = PickWorkspaceForm(request.POST or None, choices=pending.workspaces)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.connect_workspace(
                user=request.user, pending=pending, maxim_id=form.cleaned_data["maxim_id"], name=form.display_name()
            )
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            services.clear_pending(request.session)
            messages.success(request, f"Connected {workspace.name}. Test the connection below.")
            return _redirect(request, reverse("workspace_settings", args=[workspace.pk]))
    return _render_pick(request, form, pending)


@sensitive_variables()
def _render_pick(request: HttpRequest, form, pending, *, push: bool = False) -> HttpResponse:
    context = {"form": form, "pending": pending, "step": 2, "nav": "workspaces"}
    response = render(request, T + ("connect.html#connect-pick" if request.htmx else "connect.html"), context)
    if push:
        response["HX-Push-Url"] = reverse("workspace_connect_pick")
    return response


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# -- settings page ----------------------------------------------------------------------


def _context(request: HttpRequest, workspace: Workspace, **overrides) -> dict:
    membership = request.membership
    context = {
        "workspace": workspace,
        "membership": membership,
        "is_owner": membership.allows(Role.OWNER),
        "can_price": membership.allows(Role.EDITOR),
        "can_test": membership.allows(Role.EDITOR),
        "details_form": WorkspaceDetailsForm(initial={"name": workspace.name, "base_url": workspace.base_url}),
        "key_form": ReplaceKeyForm(),
        "invite_form": InviteForm(),
        "members": workspace.memberships.select_related("user").order_by("user__username"),
        "invitations": members.pending_for_workspace(workspace).select_related("invited_by"),
        "price_form": PriceForm(),
        "roles": Role.choices,
        "nav": "workspaces",
    }
    context.update(overrides)
    edited = overrides.get("edited_price")
    context["price_rows"] = [
        (price, overrides["edit_form"] if edited and price.pk == edited.pk else _price_form(price))
        for price in workspace.custom_prices.all()
    ]
    return context


def _price_form(price) -> PriceForm:
    return PriceForm(
        prefix=f"p{price.pk}",
        initial={
            "model_pattern": price.model_pattern,
            "input_usd_per_mtok": price.input_usd_per_mtok.normalize(),
            "output_usd_per_mtok": price.output_usd_per_mtok.normalize(),
        },
    )


def _section(request: HttpRequest, workspace: Workspace, section: str, saved: str = "", **overrides) -> HttpResponse:
    """htmx gets the section back; without JS a success redirects (PRG) and an error re-renders the page."""
    if request.htmx:
        return render(request, T + "settings.html#" + section, _context(request, workspace, saved=saved, **overrides))
    if saved:
        messages.success(request, saved)
        return redirect(reverse("workspace_settings", args=[workspace.pk]) + "#" + section)
    return render(request, T + "settings.html", _context(request, workspace, **overrides))


@login_required
def workspace_settings(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id)
    return render(request, T + "settings.html", _context(request, workspace))


@login_required
@require_POST
@sensitive_post_parameters("api_key")
@sensitive_variables()
def workspace_update(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    form = WorkspaceDetailsForm(request.POST)
    if form.is_valid():
        old_name = workspace.name
        try:
            services.update_details(workspace, user=request.user, **form.cleaned_data)
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            if form.cleaned_data["api_key"]:  # the connection section changed too: show the whole page
                messages.success(request, "Saved the base URL and the key, verified there with Maxim.")
                return _redirect(request, reverse("workspace_settings", args=[workspace.pk]))
            if workspace.name != old_name:  # the heading and the breadcrumbs name it too (trial: they kept the old)
                messages.success(request, "Saved the name and base URL.")
                return _redirect(request, reverse("workspace_settings", args=[workspace.pk]))
            return _section(request, workspace, "ws-details", saved="Saved the name and base URL.")
    return _section(request, workspace, "ws-details", details_form=form)


@login_required
@require_POST
def workspace_test(request: HttpRequest, workspace_id: int) -> HttpResponse:
    # Testing spends the workspace's key on a Maxim call, like running: editors and owners only.
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    check = services.check_connection(workspace)
    return _section(request, workspace, "ws-connection", check=check)


@login_required
@require_POST
@sensitive_post_parameters("api_key")
@sensitive_variables()
def workspace_replace_key(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    form = ReplaceKeyForm(request.POST)
    if form.is_valid():
        try:
            check = services.replace_key(
                workspace, form.cleaned_data["api_key"], confirmed_base_url=form.cleaned_data["base_url"]
            )
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            audit.record(workspace, actor=request.user, action=audit.Action.KEY_REPLACED, target=workspace.name)
            return _section(request, workspace, "ws-connection", saved=check.message, check=check)
    return _section(request, workspace, "ws-connection", key_form=form)


# Members and invitations: views/members.py.


# -- custom prices ---------------------------------------------------------------------------


@login_required
@require_POST
def price_add(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    form = PriceForm(request.POST)
    if form.is_valid():
        try:
            price = services.save_price(workspace, **_price_values(form))
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            audit.record_price(workspace, price, actor=request.user)
            return _section(request, workspace, "ws-prices", saved=f"Added a price for {price.model_pattern}.")
    return _section(request, workspace, "ws-prices", price_form=form)


@login_required
@require_POST
def price_update(request: HttpRequest, workspace_id: int, price_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    price = get_object_or_404(workspace.custom_prices, pk=price_id)
    form = PriceForm(request.POST, prefix=f"p{price.pk}")
    if form.is_valid():
        try:
            services.save_price(workspace, price=price, **_price_values(form))
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            audit.record_price(workspace, price, actor=request.user)
            return _section(request, workspace, "ws-prices", saved=f"Saved the price for {price.model_pattern}.")
    return _section(request, workspace, "ws-prices", edited_price=price, edit_form=form)


def _price_values(form: PriceForm) -> dict:
    data = form.cleaned_data
    return {
        "model_pattern": data["model_pattern"],
        "input_usd": data["input_usd_per_mtok"],
        "output_usd": data["output_usd_per_mtok"],
    }


@login_required
@require_POST
def price_delete(request: HttpRequest, workspace_id: int, price_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    price = get_object_or_404(workspace.custom_prices, pk=price_id)
    price.delete()
    audit.record(workspace, actor=request.user, action=audit.Action.PRICE_DELETED, target=price.model_pattern)
    return _section(request, workspace, "ws-prices", saved=f"Deleted the price for {price.model_pattern}.")


# -- delete ----------------------------------------------------------------------------------


@login_required
def workspace_delete(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    if request.method == "POST":
        name = workspace.name
        workspace.delete()
        messages.success(request, f"Deleted {name} and everything recorded in it. Nothing was deleted in Maxim.")
        return redirect("home")
    counts = {"prompts": workspace.prompts.count(), "runs": workspace.runs.count()}
    return render(request, T + "delete.html", {"workspace": workspace, "counts": counts, "nav": "workspaces"})


ws = "workspaces/<int:workspace_id>/"
urlpatterns = [
    path("", home, name="home"),
    path("workspaces/connect/", workspace_connect, name="workspace_connect"),
    path("workspaces/connect/pick/", workspace_connect_pick, name="workspace_connect_pick"),
    path(ws + "settings/", workspace_settings, name="workspace_settings"),
    path(ws + "settings/details/", workspace_update, name="workspace_update"),
    path(ws + "settings/test/", workspace_test, name="workspace_test"),
    path(ws + "settings/key/", workspace_replace_key, name="workspace_replace_key"),
    path(ws + "settings/prices/", price_add, name="price_add"),
    path(ws + "settings/prices/<int:price_id>/", price_update, name="price_update"),
    path(ws + "settings/prices/<int:price_id>/delete/", price_delete, name="price_delete"),
    path(ws + "delete/", workspace_delete, name="workspace_delete"),
]
