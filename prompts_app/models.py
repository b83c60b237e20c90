"""maximui's data: workspaces and their members, prompts and versions mirrored
from Maxim, drafts, runs with their cost, and saved comparisons."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from prompts_app import crypto
from prompts_app.redaction import masked

PROVIDERS = [
    "openai",
    "azure",
    "huggingface",
    "anthropic",
    "together",
    "google",
    "groq",
    "bedrock",
    "maxim",
    "cohere",
    "ollama",
    "lmstudio",
    "xai",
    "vertex",
    "mistral",
    "fireworks",
]
PROVIDER_CHOICES = [(p, p) for p in PROVIDERS]
# Who says a chat message. Maxim (and every stored message) calls it "role", as forms and pages do;
# in code it is the speaker, so that Role stays a member's role in a workspace.
SPEAKERS = ["system", "user", "assistant", "tool", "model", "chatbot"]

VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    maxim_id = models.CharField("Maxim workspace ID", max_length=200)
    base_url = models.URLField("API base URL", max_length=500)
    api_key_encrypted = models.TextField(editable=False)
    api_key_last4 = models.CharField(max_length=4, editable=False)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, api_key: str) -> None:
        api_key = api_key.strip()
        self.api_key_encrypted = crypto.encrypt(api_key)
        self.api_key_last4 = api_key[-4:]

    def get_api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @property
    def masked_key(self) -> str:
        return masked(self.api_key_last4)


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def allows(self, needed: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(needed)]


class Prompt(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="prompts")
    maxim_id = models.CharField(max_length=200)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    folder_id = models.CharField(max_length=200, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "maxim_id"], name="one_prompt_per_maxim_id")]

    def __str__(self) -> str:
        return self.name


class VersionContent(models.Model):
    """What a version is made of; shared by versions and drafts.

    `messages` are in the API's own shape: {role, content (str | parts | None),
    tool_calls?, tool_call_id?}. `tools` are {name, description, parameters}.
    `model_parameters` holds every parameter except tools. What is sent to Maxim is
    built from `content()` by the client (prompts_app/maxim/requests.py).
    """

    description = models.TextField(blank=True)
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES, default="openai")
    model_name = models.CharField(max_length=200, blank=True)
    model_parameters = models.JSONField(default=dict, blank=True)
    messages = models.JSONField(default=list, blank=True)
    tools = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True

    def content(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "provider": self.provider,
            "model_name": self.model_name,
            "model_parameters": self.model_parameters,
            "messages": self.messages,
            "tools": self.tools,
        }

    def variables(self) -> list[str]:
        """The `{{variable}}` names used in message text, in order of first use."""
        return variable_names(text for message in self.messages for text in message_texts(message))


def variable_names(texts: Iterable[str]) -> list[str]:
    """The `{{variable}}` names in `texts`, each once, in order of first use."""
    return list(dict.fromkeys(name for text in texts for name in VARIABLE_RE.findall(text)))


def message_texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
    return []


class PromptVersion(VersionContent):
    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported from Maxim"
        CREATED = "created", "Created here"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    maxim_id = models.CharField(max_length=200)
    number = models.PositiveIntegerField(null=True, blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.IMPORTED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    maxim_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["prompt", "maxim_id"], name="one_version_per_maxim_id")]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}" if self.number else f"{self.prompt.name} ({self.maxim_id})"

    @property
    def workspace(self) -> Workspace:
        return self.prompt.workspace


class Draft(VersionContent):
    """The builder's state, kept on the server so nothing typed is lost."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drafts")
    base_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    form_data = models.JSONField(default=dict, blank=True)  # the raw POST, to restore invalid input too
    created_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True)
    # Set while "Create version" is with Maxim, so a second click or a resubmitted form
    # does not create the same version twice.
    creating_since = models.DateTimeField(null=True, blank=True)
    # Bumped by every save; a save based on an older revision came from another tab.
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            # One open draft per user, prompt and starting version (none counts as one: NULLs
            # would be distinct in a plain unique index, hence the Coalesce).
            models.UniqueConstraint(
                "prompt",
                "user",
                Coalesce("base_version", models.Value(0)),
                condition=models.Q(created_version__isnull=True),
                name="one_open_draft_per_base",
            )
        ]

    def __str__(self) -> str:
        return f"Draft of {self.prompt.name} by {self.user}"

    @property
    def origin(self) -> str:
        """Where it began: "from v3", or "new" for a draft begun blank."""
        base = self.base_version
        if base is None:
            return "new"
        return f"from v{base.number}" if base.number else f"from {base.maxim_id}"


class Deployment(models.Model):
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="deployments")
    conditions = models.JSONField(default=list)
    response = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class CustomPrice(models.Model):
    """A per-workspace price that wins over the price library (e.g. $0 for local models)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="custom_prices")
    model_pattern = models.CharField(max_length=200, help_text="Model name or glob, e.g. llama3* ")
    input_usd_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_usd_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_pattern"]
        constraints = [models.UniqueConstraint(fields=["workspace", "model_pattern"], name="one_price_per_pattern")]

    def __str__(self) -> str:
        return f"{self.model_pattern}: ${self.input_usd_per_mtok}/${self.output_usd_per_mtok} per 1M"


class Comparison(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="comparisons")
    title = models.CharField(max_length=300, blank=True)
    shared_input = models.BooleanField(default=True)
    input = models.JSONField(default=dict, blank=True)  # {"turns": [...], "variables": {...}}
    # Each "run" of the comparison is a batch, numbered from 1; this is the latest one's
    # number (what a batch is: prompts_app/selectors/compare.py).
    batch = models.PositiveIntegerField(default=0)
    repeats = models.PositiveSmallIntegerField(default=1)  # runs per column in the latest batch
    # From the "new comparison" form: posting it twice (double click, back + resubmit)
    # opens the first comparison instead of paying for every column again.
    submit_token = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "submit_token"],
                condition=~models.Q(submit_token=""),
                name="one_comparison_per_form_submission",
            )
        ]

    def __str__(self) -> str:
        return self.title or f"Comparison {self.pk}"


class ComparisonColumn(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveSmallIntegerField()
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="+")
    draft_content = models.JSONField(null=True, blank=True)  # a draft snapshot, run against `version`
    input = models.JSONField(null=True, blank=True)  # per-column input when not shared
    # A draft's name when the comparison was made ("Draft of X (from v1)", "… (new)"): `version` is
    # only what its runs are stored against, the prompt's newest for a draft begun blank.
    label = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["position"]

    @property
    def is_draft(self) -> bool:
        return self.draft_content is not None


class Run(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCESS = "success", "Succeeded"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"
        # Still queued (never started) when its process died: it never reached Maxim.
        NOT_SENT = "not_sent", "Not sent"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="runs")
    comparison = models.ForeignKey(Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    column = models.ForeignKey(ComparisonColumn, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    is_draft = models.BooleanField(default=False)
    # A token from the run form: the same form posted twice (double click, resubmit)
    # finds the first run instead of paying for a second one.
    idempotency_key = models.CharField(max_length=64, blank=True)
    # A comparison's run: the batch it belongs to and its repeat within its column (0, 1, ...).
    # Null for a run of its own. What a batch is: prompts_app/selectors/compare.py.
    batch = models.PositiveIntegerField(null=True, blank=True)
    repeat = models.PositiveSmallIntegerField(null=True, blank=True)
    # A batch comparison's attempt that Maxim refused with 429: kept as a failed run, linked to
    # its cell, which was sent again; the cell's `run` is its newest attempt (services/batch_worker.py).
    # A batch comparison's run: history and the run page label it with its batch.
    batch_comparison = models.ForeignKey(
        "BatchComparison", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    retried_cell = models.ForeignKey(
        "BatchCell", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_runs"
    )

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=20)
    model_name = models.CharField(max_length=200)
    input = models.JSONField(default=dict)  # {"turns": [...], "variables": {...}, "overrides": {...}}
    input_text = models.TextField(blank=True)  # the user's turns, flattened for search
    request_body = models.JSONField(default=dict)  # exactly what was sent (the key is a header, never here)

    output = models.JSONField(null=True, blank=True)  # raw, as returned
    output_text = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    error_status = models.PositiveSmallIntegerField(null=True, blank=True)

    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(null=True, blank=True)

    cost_nano = models.BigIntegerField(null=True, blank=True)  # nano-USD; NULL = unpriced, never 0
    input_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    output_usd_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    price_source = models.CharField(max_length=200, blank=True)
    price_as_of = models.DateField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set just before the request to Maxim leaves; NULL while the run waits in a queue
    # (a comparison's thread pool), so the pending sweep can tell "queued" from "in flight".
    started_at = models.DateTimeField(null=True, blank=True)
    # History area: set once the run's figures are added to RunRollup (services/rollups.py);
    # totals add the rollups to a live sum over the few runs where this is still False.
    rolled_up = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        # History area: keyset pages walk these in (created_at, id) order.
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="run_ws_created"),
            models.Index(fields=["workspace", "model_name", "created_at"], name="run_ws_model_created"),
            models.Index(fields=["rolled_up"], name="run_not_rolled_up", condition=models.Q(rolled_up=False)),
            # A batch's runs, and its newest one (selectors/batch_watch: a cell claimed since the page).
            models.Index(fields=["batch_comparison", "id"], name="run_batch_newest"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_run_per_form_submission",
            ),
            # One run per place in a batch: a double-posted "Run again" can never pay twice.
            models.UniqueConstraint(
                fields=["column", "batch", "repeat"],
                condition=models.Q(column__isnull=False),
                name="one_run_per_batch_place",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.version} ({self.status})"

    @property
    def is_priced(self) -> bool:
        return self.cost_nano is not None


# --- History area (issue #4): per-day and per-month run totals --------------------------------


class RunRollup(models.Model):
    """Sums of finished runs per (period, workspace, prompt, version, user, provider, model, status, draft).

    Totals over a million runs read a few thousand of these rows instead of every
    run. A `day` row covers one UTC day; a `month` row (day = the 1st) covers the
    whole month, so long ranges read whole months; a `vday` row sums a day of one version
    over all users and statuses. Maintained by services/rollups.py.
    """

    class Grain(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"
        # For the cost review, which never filters by user or status: ~10x fewer rows per day.
        # These rows have user NULL and status "".
        VERSION_DAY = "vday", "Day, per version (users and statuses summed)"

    grain = models.CharField(max_length=5, choices=Grain.choices)
    day = models.DateField()
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.CharField(max_length=20)
    model_name = models.CharField(max_length=200)
    status = models.CharField(max_length=12)
    is_draft = models.BooleanField(default=False)  # runs of unsaved drafts, apart from the version's own

    runs = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_nano = models.BigIntegerField(default=0)  # sum over priced runs only
    priced_runs = models.BigIntegerField(default=0)
    unpriced_runs = models.BigIntegerField(default=0)  # succeeded without a known price
    latency_sum = models.FloatField(default=0)
    latency_runs = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # user is NULL on "vday" rows, and NULLs never collide in a plain unique index:
            # COALESCE makes the key really unique on every database (services/rollups.py
            # upserts against exactly these expressions).
            models.UniqueConstraint(
                *(models.F(name) for name in ("grain", "day", "workspace", "prompt", "version")),
                Coalesce("user", models.Value(0)),
                *(models.F(name) for name in ("provider", "model_name", "status", "is_draft")),
                name="one_rollup_per_key_v2",
            )
        ]
        indexes = [models.Index(fields=["grain", "day"], name="rollup_grain_day")]

    def __str__(self) -> str:
        return f"{self.grain} {self.day} v{self.version_id} {self.model_name} {self.status}: {self.runs} runs"


class Invitation(models.Model):
    """An owner's offer of a role in a workspace; a person becomes a member only by accepting it.

    Only a hash of the link's token is stored. `invitee` is what the owner typed (a username or an
    email address), or empty for a link anyone signed in may use; it binds the invitation to
    that account. Whether such an account exists is never told to the owner.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.CharField(max_length=254, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "invitee"])]

    def __str__(self) -> str:
        return f"{self.invitee or 'link'} as {self.role} in {self.workspace_id}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING and self.expires_at > timezone.now()

    def is_for(self, user: Any) -> bool:
        """Bound to this account: the typed name is its username, or its email address. Usernames
        are case-sensitive (`bob` and `BOB` can be two people), so a match that ignores case counts
        only when no other account matches the same way."""
        from django.contrib.auth import get_user_model

        users = get_user_model()._default_manager
        typed = self.invitee.strip()
        if typed == user.get_username():
            return True
        if typed.lower() == user.get_username().lower():
            return users.filter(**{f"{get_user_model().USERNAME_FIELD}__iexact": typed}).count() == 1
        email = (getattr(user, "email", "") or "").strip()
        if "@" not in typed or email.lower() != typed.lower():
            return False
        return users.filter(email__iexact=email).count() == 1


class AuditEvent(models.Model):
    """Who changed what in a workspace, for its owners. `detail` never holds a secret."""

    class Action(models.TextChoices):
        KEY_CONNECTED = "key.connected", "Key connected"
        KEY_REPLACED = "key.replaced", "Key replaced"
        BASE_URL_CHANGED = "workspace.base_url", "Base URL changed"
        MEMBER_JOINED = "member.joined", "Member joined"
        MEMBER_ROLE = "member.role", "Member role changed"
        MEMBER_REMOVED = "member.removed", "Member removed"
        INVITATION_CREATED = "invitation.created", "Invitation created"
        INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
        INVITATION_DECLINED = "invitation.declined", "Invitation declined"
        INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
        VERSION_CREATED = "version.created", "Version created"
        VERSION_DEPLOYED = "version.deployed", "Version deployed"
        PRICE_SAVED = "price.saved", "Price set"
        PRICE_DELETED = "price.deleted", "Price deleted"
        RUNS_EXPORTED = "runs.exported", "Runs exported"
        BATCH_EXPORTED = "batch.exported", "Batch exported"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)  # kept when the account is deleted
    action = models.CharField(max_length=40, choices=Action.choices)
    target = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at", "-id"])]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_name} on {self.target}"


# --- Test sets (issue #12): named lists of inputs, each with an optional expected output -----


class TestSet(models.Model):
    __test__ = False  # not a pytest test class, whatever its name says

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="test_sets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The variable names its cases use, in column order; kept by services/testsets.py so the
    # table's columns need not be read out of every case's JSON.
    variable_names = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class TestCase(models.Model):
    __test__ = False  # not a pytest test class, whatever its name says

    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="cases")
    position = models.PositiveIntegerField()
    variables = models.JSONField(default=dict, blank=True)  # {name: value}, values are strings
    turns = models.JSONField(default=list, blank=True)  # [{role, content}], optional
    expected_output = models.TextField(blank=True)
    source_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["test_set", "position"], name="testcase_set_position")]

    def __str__(self) -> str:
        return f"Case {self.position} of {self.test_set}"


class TestSetUpload(models.Model):
    """An uploaded file between its preview and the user's confirmation.

    The content stays on the server, so the confirmation imports exactly what was
    previewed; the client only names the row, which is checked against the test set
    and the user. Rows are deleted on import and expire after a day.
    """

    __test__ = False

    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255, blank=True)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    check_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)


# --- Batch comparisons (issue #12): versions over a test set, run by background workers ------


class BatchSettings(models.Model):
    """A workspace's batch settings, and the shared slow-down after Maxim answered 429."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="batch_settings")
    # Above this estimate a batch asks to confirm before it starts; NULL: never asks.
    soft_budget_nano = models.BigIntegerField(null=True, blank=True)
    # Maxim's Retry-After, in the database so that every worker process honours it.
    throttled_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Batch settings of {self.workspace_id}"


class BatchComparison(models.Model):
    """Columns (versions or draft snapshots) x cases of a test set x repeats, each cell one Run."""

    class Status(models.TextChoices):
        # Its cells are still being created (in chunks): no worker claims them until it runs.
        PREPARING = "preparing", "Preparing"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="batch_comparisons")
    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="batch_comparisons")
    title = models.CharField(max_length=300, blank=True)
    case_filter = models.CharField(max_length=200, blank=True)  # only cases containing this text
    repeats = models.PositiveSmallIntegerField(default=1)
    concurrency = models.PositiveSmallIntegerField(default=4)
    # Lowered (halved) by each 429 and raised back one at a time once Maxim stops refusing.
    current_limit = models.PositiveSmallIntegerField(default=4)
    checks = models.JSONField(default=list, blank=True)  # [{"type": ..., "name"?: ..., **config}]
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    total_cells = models.PositiveIntegerField(default=0)
    estimated_cost_nano = models.BigIntegerField(null=True, blank=True)  # NULL: some column unpriced
    last_throttled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Time spent running, without pauses: elapsed = active_seconds + (now - resumed_at) while running.
    resumed_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0)
    # From the "new batch" form: posting it twice (double click, back + resubmit, a copied tab)
    # opens the first batch instead of paying for every cell again.
    submit_token = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "submit_token"],
                condition=~models.Q(submit_token=""),
                name="one_batch_per_form_submission",
            )
        ]

    def __str__(self) -> str:
        return self.label_of(self.pk, self.title)

    @staticmethod
    def label_of(pk: int, title: str) -> str:
        """What a batch is called wherever it is shown (history, exports), from two columns read
        without the row."""
        return title or f"Batch {pk}"

    def elapsed_seconds(self, now=None) -> float:
        if self.status == self.Status.RUNNING and self.resumed_at:
            return self.active_seconds + ((now or timezone.now()) - self.resumed_at).total_seconds()
        return self.active_seconds


class BatchColumn(models.Model):
    batch = models.ForeignKey(BatchComparison, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveSmallIntegerField()
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="+")
    draft_content = models.JSONField(null=True, blank=True)  # a draft snapshot, run against `version`
    label = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["position"]

    @property
    def is_draft(self) -> bool:
        return self.draft_content is not None


class BatchWorker(models.Model):
    """One worker's drive of a batch, alive while `beat_at` is recent (services/batch_worker.py)."""

    name = models.CharField(max_length=100)  # host, process and a random part, for people reading logs
    beat_at = models.DateTimeField(default=timezone.now)
    # The batch it drives: live drives of one batch share its concurrency limit (a fair share each).
    batch = models.ForeignKey(
        "BatchComparison", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )

    def __str__(self) -> str:
        return self.name


class BatchCell(models.Model):
    """One (column, case, repeat) of a batch. `run` is created when a worker claims the cell."""

    class State(models.TextChoices):
        QUEUED = "queued", "Left"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Done"
        FAILED = "failed", "Failed"

    batch = models.ForeignKey(BatchComparison, on_delete=models.CASCADE, related_name="cells")
    column = models.ForeignKey(BatchColumn, on_delete=models.CASCADE, related_name="cells")
    # NULL once the case is deleted: the cell stays, so the batch's counts still add up, and a
    # worker fails it with the reason instead of sending it (services/batch_worker.py).
    case = models.ForeignKey(TestCase, null=True, on_delete=models.SET_NULL, related_name="+")
    repeat = models.PositiveSmallIntegerField(default=1)
    run = models.OneToOneField(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_cell")
    # The worker sending this cell while it is "running"; a stale heartbeat means it died.
    worker = models.ForeignKey("BatchWorker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    not_before = models.DateTimeField(null=True, blank=True)  # after a 429: not claimed before this
    attempts = models.PositiveSmallIntegerField(default=0)  # runs refused unprocessed (429) or never sent
    error = models.TextField(blank=True)  # why a cell failed without a run (its input was refused)
    check_results = models.JSONField(default=list, blank=True)  # [{"name", "passed", "reason"}]
    passed = models.BooleanField(null=True)  # every check passed; NULL: no checks or not finished

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "column", "case", "repeat"], name="one_cell_per_batch_key")
        ]
        indexes = [
            # With the id: a worker's claim reads a batch's first queued cells in id order, and
            # PostgreSQL, given (batch, state) alone, sorted all of them each time (3.2 ms a claim
            # at 2,000 cells, pg_stat_statements over bench_batch, while the batch row was locked).
            models.Index(fields=["batch", "state", "id"], name="batchcell_batch_state_id"),
            models.Index(fields=["batch", "case"], name="batchcell_batch_case"),
            # Covers the running summary's GROUP BY (column, state) and its latency read: the cells'
            # rows are not read (bench/bench_matrix.py, running summary). An index on the runs' figures
            # was tried too: SQLite keeps reading runs by rowid, so it would only slow run inserts.
            models.Index(fields=["batch", "column", "state", "passed", "run"], name="batchcell_summary"),
        ]

    def __str__(self) -> str:
        return f"Cell {self.column_id}/{self.case_id}#{self.repeat} of batch {self.batch_id} ({self.state})"
