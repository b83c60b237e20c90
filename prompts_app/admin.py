"""The Django admin for maximui's models: for support and clean-up, not daily work.

The API key ciphertext is never shown (only the masked last 4), nor can the base URL
it is sent to be changed here; run records are
read-mostly since they are what was actually sent and paid for.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from prompts_app.models import (
    AuditEvent,
    Comparison,
    ComparisonColumn,
    CustomPrice,
    Deployment,
    Draft,
    Invitation,
    Membership,
    Prompt,
    PromptVersion,
    Run,
    RunRollup,
    TestCase,
    TestSet,
    TestSetUpload,
    Workspace,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class CustomPriceInline(admin.TabularInline):
    model = CustomPrice
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "maxim_id", "base_url", "masked_key", "created_by", "created_at", "last_checked_at"]
    list_filter = ["base_url", "created_at"]
    search_fields = ["name", "maxim_id", "base_url"]
    exclude = ["api_key_encrypted"]
    # The base URL is where the stored key is sent: it changes only in the workspace settings,
    # together with the key itself, verified at the new URL (keys are organisation-wide).
    readonly_fields = ["base_url", "masked_key", "created_at", "last_checked_at", "last_check_error"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline, CustomPriceInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="API key")
    def masked_key(self, obj: Workspace) -> str:
        # Replace keys from the workspace settings page, where they are verified first.
        return obj.masked_key if obj.api_key_last4 else "—"

    def has_add_permission(self, request) -> bool:
        # A workspace needs a key verified with Maxim: connect it from the dashboard.
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "workspace__name"]
    raw_id_fields = ["user", "workspace"]
    list_select_related = ["user", "workspace"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "maxim_id", "synced_at", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "maxim_id", "description"]
    raw_id_fields = ["workspace"]
    readonly_fields = ["raw", "synced_at"]
    list_select_related = ["workspace"]


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "prompt", "number", "provider", "model_name", "source", "author_name", "created_at"]
    list_filter = ["source", "provider"]
    search_fields = ["maxim_id", "prompt__name", "description", "model_name"]
    raw_id_fields = ["prompt", "created_by"]
    readonly_fields = ["raw", "maxim_created_at"]
    list_select_related = ["prompt"]


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ["__str__", "prompt", "user", "model_name", "updated_at"]
    search_fields = ["prompt__name", "user__username"]
    raw_id_fields = ["prompt", "user", "base_version", "created_version"]
    readonly_fields = ["form_data", "last_error", "updated_at"]
    list_select_related = ["prompt", "user"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["version", "status", "created_by", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["version", "created_by"]
    readonly_fields = ["conditions", "response", "status", "error", "created_at"]


@admin.register(CustomPrice)
class CustomPriceAdmin(admin.ModelAdmin):
    list_display = ["model_pattern", "workspace", "input_usd_per_mtok", "output_usd_per_mtok", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["model_pattern", "workspace__name"]
    raw_id_fields = ["workspace"]


class ComparisonColumnInline(admin.TabularInline):
    model = ComparisonColumn
    extra = 0
    raw_id_fields = ["version"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["__str__", "workspace", "created_by", "shared_input", "updated_at"]
    list_filter = ["shared_input"]
    search_fields = ["title", "workspace__name"]
    raw_id_fields = ["workspace", "created_by"]
    inlines = [ComparisonColumnInline]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "status",
        "workspace",
        "prompt",
        "model_name",
        "total_tokens",
        "cost_nano",
        "user",
    ]
    list_filter = ["status", "provider", "is_draft", "created_at"]
    search_fields = ["model_name", "input_text", "output_text", "error", "prompt__name"]
    raw_id_fields = ["workspace", "prompt", "version", "user", "comparison", "column"]
    list_select_related = ["workspace", "prompt", "user"]
    date_hierarchy = "created_at"
    # A run records what was sent and paid for; only its status may be corrected (e.g. a stuck pending run).
    readonly_fields = [
        "idempotency_key",
        "provider",
        "model_name",
        "input",
        "input_text",
        "request_body",
        "output",
        "output_text",
        "tool_calls",
        "error",
        "error_status",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "cost_nano",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "price_source",
        "price_as_of",
        "created_at",
        "finished_at",
        "is_draft",
        "rolled_up",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RunRollup)
class RunRollupAdmin(admin.ModelAdmin):
    """Derived totals (services/rollups.py maintains them): look, never edit."""

    list_display = ["grain", "day", "workspace", "model_name", "status", "runs", "total_tokens", "cost_nano"]
    list_filter = ["grain", "status"]
    search_fields = ["model_name", "workspace__name"]
    raw_id_fields = ["workspace", "prompt", "version", "user"]
    list_select_related = ["workspace"]
    date_hierarchy = "day"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are created by owners in the app (the link's token is shown only there); here they can be read or revoked."""

    list_display = ["workspace", "invitee", "role", "status", "created_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["invitee", "workspace__name"]
    raw_id_fields = ["workspace", "invited_by", "responded_by"]
    readonly_fields = ["workspace", "invitee", "role", "invited_by", "created_at", "responded_by", "responded_at"]
    exclude = ["token_hash"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail: look, never edit."""

    list_display = ["created_at", "workspace", "actor_name", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target", "workspace__name"]
    raw_id_fields = ["workspace", "actor"]
    list_select_related = ["workspace"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- Test sets (issue #12) -----------------------------------------------------------------


@admin.register(TestSet)
class TestSetAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_by", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "description"]
    raw_id_fields = ["workspace", "created_by"]
    list_select_related = ["workspace", "created_by"]


@admin.register(TestCase)
class TestCaseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "test_set", "position", "updated_at"]
    search_fields = ["test_set__name", "expected_output"]
    raw_id_fields = ["test_set", "source_run"]
    list_select_related = ["test_set"]


@admin.register(TestSetUpload)
class TestSetUploadAdmin(admin.ModelAdmin):
    """Staged files awaiting confirmation; their content is not shown (it may be large)."""

    list_display = ["filename", "test_set", "user", "created_at"]
    search_fields = ["filename", "test_set__name"]
    exclude = ["content"]
    readonly_fields = ["filename", "sha256", "test_set", "user", "check_version", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


# --- Batch comparisons (issue #12): for looking, not for starting (that is services/batches.py) ----
from prompts_app.models import BatchCell, BatchColumn, BatchComparison, BatchSettings, BatchWorker  # noqa: E402


@admin.register(BatchSettings)
class BatchSettingsAdmin(admin.ModelAdmin):
    list_display = ["workspace", "soft_budget_nano", "throttled_until"]
    raw_id_fields = ["workspace"]


@admin.register(BatchComparison)
class BatchComparisonAdmin(admin.ModelAdmin):
    list_display = ["__str__", "workspace", "test_set", "status", "total_cells", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "test_set__name"]
    raw_id_fields = ["workspace", "test_set", "created_by"]
    list_select_related = ["workspace", "test_set"]


@admin.register(BatchColumn)
class BatchColumnAdmin(admin.ModelAdmin):
    list_display = ["label", "batch", "position"]
    search_fields = ["label"]
    raw_id_fields = ["batch", "version"]


@admin.register(BatchCell)
class BatchCellAdmin(admin.ModelAdmin):
    list_display = ["__str__", "state", "passed", "attempts"]
    list_filter = ["state"]
    raw_id_fields = ["batch", "column", "case", "run", "worker"]


@admin.register(BatchWorker)
class BatchWorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at"]
    search_fields = ["name"]
