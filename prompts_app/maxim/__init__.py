"""The Maxim client: the only package in maximui that speaks HTTP, and the only one that
knows Maxim's format, both ways. No ORM here.

- `requests`: what we send, one frozen dataclass per request, `.body()` the exact JSON;
- `shapes`: what Maxim answers, read into typed results (and a version back into our content);
- `client`: `client_for(workspace)`, the calls, retries and every failure as one `MaximError`;
- `outbound`: where it may connect, how long and how much it reads.
"""

from __future__ import annotations

from prompts_app.maxim.client import (
    CALL_DEADLINE,
    CHECK_DEADLINE,
    MAX_PAGES,
    PAGE_SIZE,
    RUN_DEADLINE,
    USER_AGENT,
    Connection,
    Credentials,
    MaximClient,
    Use,
    check_base_url,
    client_for,
    close_pools,
    normalise_base_url,
    warm_up,
)
from prompts_app.maxim.errors import MaximError
from prompts_app.maxim.requests import (
    ModelChoice,
    NewDeployment,
    NewPrompt,
    NewVersion,
    RunRequest,
)
from prompts_app.maxim.shapes import (
    DeployResult,
    PromptInfo,
    RunResult,
    VersionInfo,
    WorkspaceInfo,
)

__all__ = [
    "CALL_DEADLINE",
    "CHECK_DEADLINE",
    "MAX_PAGES",
    "PAGE_SIZE",
    "RUN_DEADLINE",
    "USER_AGENT",
    "Connection",
    "Credentials",
    "DeployResult",
    "MaximClient",
    "MaximError",
    "ModelChoice",
    "NewDeployment",
    "NewPrompt",
    "NewVersion",
    "PromptInfo",
    "RunRequest",
    "RunResult",
    "Use",
    "VersionInfo",
    "WorkspaceInfo",
    "check_base_url",
    "client_for",
    "close_pools",
    "normalise_base_url",
    "warm_up",
]
