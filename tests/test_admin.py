"""The admin: every model registered and rendering, key ciphertext hidden, runs read-mostly."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from prompts_app.models import ComparisonColumn, CustomPrice, Run
from tests.conftest import API_KEY


@pytest.fixture
def admin_client_(client, make_user):
    user = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def run(version, owner):
    return Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=owner,
        status=Run.Status.SUCCESS,
        provider="openai",
        model_name="gpt-4o",
        input={"turns": []},
        request_body={"versionId": "version-1"},
        output_text="hi",
        total_tokens=12,
        cost_nano=1500,
    )


def test_every_app_model_is_registered_except_inlined_columns():
    models = set(apps.get_app_config("prompts_app").get_models())
    registered = {m for m in models if admin.site.is_registered(m)}
    assert models - registered == {ComparisonColumn}


def test_every_changelist_add_and_change_page_renders(admin_client_, run, workspace):
    CustomPrice.objects.create(workspace=workspace, model_pattern="x*", input_usd_per_mtok=1, output_usd_per_mtok=1)
    for model in apps.get_app_config("prompts_app").get_models():
        if not admin.site.is_registered(model):
            continue
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client_.get(changelist).status_code == 200, changelist
        assert admin_client_.get(changelist + "?q=a").status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client_.get(change).status_code == 200, change


def test_the_workspace_admin_shows_the_masked_key_and_never_the_ciphertext(admin_client_, workspace):
    for page in [
        reverse("admin:prompts_app_workspace_changelist"),
        reverse("admin:prompts_app_workspace_change", args=[workspace.pk]),
    ]:
        html = admin_client_.get(page).content.decode()
        assert "••••1234" in html
        assert workspace.api_key_encrypted not in html and API_KEY not in html
        assert "api_key_encrypted" not in html


def test_saving_a_workspace_in_the_admin_keeps_its_key(admin_client_, workspace):
    change = reverse("admin:prompts_app_workspace_change", args=[workspace.pk])
    data = {
        "name": "Renamed",
        "maxim_id": "ws-1",
        "base_url": workspace.base_url,
        "created_by": workspace.created_by_id,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "custom_prices-TOTAL_FORMS": "0",
        "custom_prices-INITIAL_FORMS": "0",
    }
    response = admin_client_.post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace.refresh_from_db()
    assert workspace.name == "Renamed" and workspace.get_api_key() == API_KEY


def test_the_run_admin_shows_recorded_fields_read_only_and_cannot_add(admin_client_, run):
    html = admin_client_.get(reverse("admin:prompts_app_run_change", args=[run.pk])).content.decode()
    assert 'name="request_body"' not in html and 'name="cost_nano"' not in html
    assert 'name="status"' in html  # a stuck run's status may be corrected
    assert admin_client_.get(reverse("admin:prompts_app_run_add")).status_code == 403


def test_workspaces_cannot_be_added_in_the_admin_without_a_verified_key(admin_client_):
    assert admin_client_.get(reverse("admin:prompts_app_workspace_add")).status_code == 403
