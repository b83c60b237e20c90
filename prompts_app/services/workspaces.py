"""Workspace use-cases: connecting one to Maxim, checking and replacing its key,
custom prices (members: services/members.py). Views call these; they never touch httpx."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from prompts_app import crypto
from prompts_app.maxim import Credentials, MaximClient, MaximError, Use, check_base_url, client_for, normalise_base_url
from prompts_app.models import CustomPrice, Membership, Role, Workspace
from prompts_app.redaction import masked, redact
from prompts_app.services import audit

log = logging.getLogger(__name__)

# Between the two connect steps the key waits in the session, encrypted, this long; the
# ciphertext itself expires too, so an abandoned flow leaves nothing usable behind.
PENDING_KEY_SECONDS = 15 * 60
_SESSION_KEY = "workspace_connect"


@sensitive_variables()
def _checking_client(base_url: str, api_key: str) -> MaximClient:
    """For a URL or key a person just typed, or a test they pressed: one try, a short deadline."""
    return client_for(Credentials(base_url, api_key), Use.CHECK)


class WorkspaceError(Exception):
    """A use-case refused; `field` says which form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def allowed_base_url(base_url: str) -> str:
    """`base_url` normalised the way the client will use it, if the outbound policy allows
    its origin; WorkspaceError (for the base_url field) otherwise."""
    try:
        return check_base_url(base_url)
    except MaximError as exc:
        raise WorkspaceError(exc.message, field="base_url") from None


def _normalised(base_url: str) -> str:
    try:
        return normalise_base_url(base_url)
    except MaximError as exc:
        raise WorkspaceError(exc.message, field="base_url") from None


# -- connecting -------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingConnection:
    """What step 1 learned, kept server-side for step 2. `workspaces` is None when listing was refused."""

    base_url: str
    api_key: str = field(repr=False)  # error reports print reprs of local variables
    workspaces: list[tuple[str, str]] | None = None
    listing_error: str = ""

    @property
    def masked_key(self) -> str:
        return masked(self.api_key)


@sensitive_variables()
def discover_workspaces(*, base_url: str, api_key: str) -> PendingConnection:
    """Ask Maxim which workspaces the key reaches. A 403 on listing is not fatal:
    the user may then type the workspace ID. Other failures raise WorkspaceError."""
    try:
        found = _checking_client(base_url, api_key).list_workspaces()
    except MaximError as exc:
        if exc.status == 403:
            return PendingConnection(base_url, api_key.strip(), None, exc.message)
        raise WorkspaceError(_new_key_message(exc), field=_field_for(exc)) from None
    return PendingConnection(base_url, api_key.strip(), [(w.id, w.name or w.id) for w in found])


def _new_key_message(exc: MaximError) -> str:
    # The client's 401 text speaks of "the key saved for this workspace"; here the key is the one just typed.
    if exc.status == 401:
        return "Maxim rejected this API key; check that you copied the whole key, and enter it again."
    return exc.message


def _field_for(exc: MaximError) -> str | None:
    if exc.status == 401:
        return "api_key"
    if exc.status is None or 300 <= exc.status < 400:
        return "base_url"  # could not connect, not JSON, redirect: the URL is the usual suspect
    return None


@sensitive_variables()
def stash_pending(session: Any, pending: PendingConnection) -> None:
    session[_SESSION_KEY] = {
        "base_url": pending.base_url,
        "key": crypto.encrypt(pending.api_key),
        "workspaces": pending.workspaces,
        "listing_error": pending.listing_error,
        "expires": time.time() + PENDING_KEY_SECONDS,
    }


@sensitive_variables()
def load_pending(session: Any) -> PendingConnection | None:
    """The stashed step-1 result, or None when missing, expired or undecryptable."""
    data = session.get(_SESSION_KEY)
    if not data or data.get("expires", 0) < time.time():
        clear_pending(session)
        return None
    try:
        key = crypto.decrypt(data["key"], ttl=PENDING_KEY_SECONDS)
    except (crypto.DecryptionError, KeyError, TypeError):
        clear_pending(session)
        return None
    workspaces = data.get("workspaces")
    return PendingConnection(
        base_url=data["base_url"],
        api_key=key,
        workspaces=[(str(i), str(n)) for i, n in workspaces] if workspaces is not None else None,
        listing_error=data.get("listing_error", ""),
    )


def clear_pending(session: Any) -> None:
    session.pop(_SESSION_KEY, None)


def find_duplicate(user, *, maxim_id: str, base_url: str) -> Workspace | None:
    return Workspace.objects.filter(memberships__user=user, maxim_id=maxim_id, base_url=_normalised(base_url)).first()


@sensitive_variables()
def check_workspace_reachable(pending: PendingConnection, maxim_id: str) -> None:
    """For a typed-in ID: prove the key reaches it before saving."""
    try:
        _checking_client(pending.base_url, pending.api_key).list_prompts(maxim_id)
    except MaximError as exc:
        if exc.status in (403, 404):
            raise WorkspaceError(
                f"The key cannot reach the workspace {maxim_id}; check the ID. ({exc.message})", field="maxim_id"
            ) from None
        raise WorkspaceError(exc.message) from None


@sensitive_variables()
def connect_workspace(*, user, pending: PendingConnection, maxim_id: str, name: str) -> Workspace:
    """Save the workspace with the stashed key and make `user` its owner.

    A typed-in ID (listing was refused) is first proven reachable with the key.
    """
    base_url = _normalised(pending.base_url)
    if find_duplicate(user, maxim_id=maxim_id, base_url=base_url):
        raise WorkspaceError("You have already connected this workspace at this base URL.", field="maxim_id")
    if pending.workspaces is None:
        check_workspace_reachable(pending, maxim_id)
    with transaction.atomic():
        workspace = Workspace(name=name or maxim_id, maxim_id=maxim_id, base_url=base_url, created_by=user)
        workspace.set_api_key(pending.api_key)
        workspace.save()
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        audit.record(
            workspace,
            actor=user,
            action=audit.Action.KEY_CONNECTED,
            target=workspace.name,
            detail={"maxim_id": maxim_id, "base_url": base_url},
        )
    log.info("workspace %s (%s) connected by user %s", workspace.pk, maxim_id, user.pk)
    return workspace


# -- the connection of a saved workspace ---------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    prompt_count: int = 0


@sensitive_variables()
def check_connection(workspace: Workspace) -> ConnectionCheck:
    """List the workspace's prompts (proves the key reaches this very workspace) and record the outcome."""
    try:
        prompts = client_for(workspace, Use.CHECK).list_prompts(workspace.maxim_id)
    except MaximError as exc:  # crypto.DecryptionError included
        check = ConnectionCheck(False, exc.message)
    else:
        noun = "prompt" if len(prompts) == 1 else "prompts"
        check = ConnectionCheck(True, f"Connected: Maxim shows {len(prompts)} {noun} in this workspace.", len(prompts))
    workspace.last_checked_at = timezone.now()
    workspace.last_check_error = "" if check.ok else check.message
    workspace.save(update_fields=["last_checked_at", "last_check_error"])
    return check


@sensitive_variables()
def replace_key(workspace: Workspace, new_key: str, *, confirmed_base_url: str) -> ConnectionCheck:
    """Save `new_key` only if Maxim accepts it for this workspace; raise WorkspaceError otherwise.

    `confirmed_base_url` is the URL the person saw next to the key field: the key goes nowhere else,
    even if someone changed the workspace's base URL in between.
    """
    if confirmed_base_url != workspace.base_url:
        raise WorkspaceError(
            f"The base URL is now {workspace.base_url}, not the one shown when you typed the key; "
            "check it, then enter the key again. The key was not sent.",
            field="api_key",
        )
    prompts = _verify_key(workspace, workspace.base_url, new_key)
    workspace.set_api_key(new_key)
    workspace.last_checked_at = timezone.now()
    workspace.last_check_error = ""
    workspace.save()
    return ConnectionCheck(True, f"Key replaced and verified: Maxim shows {len(prompts)} prompts.", len(prompts))


@sensitive_variables()
def _verify_key(workspace: Workspace, base_url: str, key: str) -> list:
    """The workspace's prompts as seen with `key` at `base_url`; WorkspaceError if that fails."""
    try:
        return _checking_client(base_url, key).list_prompts(workspace.maxim_id)
    except MaximError as exc:
        # The client redacts the key it sent; a server may also echo the key it knows (the old one).
        message = redact(_new_key_message(exc), _stored_key(workspace))
        raise WorkspaceError(f"{message} The key was not saved.", field="api_key") from None


@sensitive_variables()
def _stored_key(workspace: Workspace) -> str:
    try:
        return workspace.get_api_key()
    except crypto.DecryptionError:
        return ""


@sensitive_variables()
def update_details(workspace: Workspace, *, name: str, base_url: str, api_key: str = "", user) -> Workspace:
    """Rename, or move to another base URL. Keys are organisation-wide, so any new base URL needs
    the key typed again, verified there first: the stored key never follows a URL change."""
    base_url = _normalised(base_url)
    duplicate = find_duplicate(user, maxim_id=workspace.maxim_id, base_url=base_url)
    if duplicate is not None and duplicate.pk != workspace.pk:
        raise WorkspaceError(
            f"Your workspace “{duplicate.name}” already uses this Maxim workspace at this URL.", field="base_url"
        )
    # Any change, the path included: a co-owner could otherwise point the stored key at another
    # endpoint of the same origin that echoes it back into an error or a prompt name.
    if not api_key and base_url != _normalised(workspace.base_url):
        raise WorkspaceError(
            "Enter the API key again to change the base URL: the stored key is only ever sent where it was confirmed.",
            field="api_key",
        )
    old_base_url = workspace.base_url
    fields = ["name", "base_url"]
    if api_key:
        _verify_key(workspace, base_url, api_key)
        workspace.set_api_key(api_key)
        workspace.last_checked_at, workspace.last_check_error = timezone.now(), ""
        fields += ["api_key_encrypted", "api_key_last4", "last_checked_at", "last_check_error"]
    workspace.name = name
    workspace.base_url = base_url
    workspace.save(update_fields=fields)
    if old_base_url != base_url:
        audit.record(
            workspace,
            actor=user,
            action=audit.Action.BASE_URL_CHANGED,
            target=workspace.name,
            detail={"from": old_base_url, "to": base_url},
        )
    return workspace


# Members and invitations live in services/members.py.


# -- custom prices ------------------------------------------------------------------------


def save_price(
    workspace: Workspace,
    *,
    model_pattern: str,
    input_usd: Decimal,
    output_usd: Decimal,
    price: CustomPrice | None = None,
) -> CustomPrice:
    clash = workspace.custom_prices.filter(model_pattern=model_pattern)
    if price is not None:
        clash = clash.exclude(pk=price.pk)
    if clash.exists():
        raise WorkspaceError(f"There is already a price for “{model_pattern}”; edit that one.", field="model_pattern")
    price = price or CustomPrice(workspace=workspace)
    price.model_pattern = model_pattern
    price.input_usd_per_mtok = input_usd
    price.output_usd_per_mtok = output_usd
    price.save()
    return price
