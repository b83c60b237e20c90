"""The workspace the comparison benches share: users, one prompt, and N versions known to a fake Maxim.

Needs Django set up first (it imports the models).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from devtools.maxim_server import FakeMaxim
from prompts_app.maxim import NewVersion
from prompts_app.models import Membership, Prompt, PromptVersion, Role, Workspace

PASSWORD = "bench-pw"


@dataclass
class Seeded:
    users: list
    workspace: Workspace
    prompt: Prompt
    versions: list[PromptVersion]


def seed_versions(
    fake: FakeMaxim,
    *,
    columns: int,
    usernames: tuple[str, ...] = ("bench",),
    system: str = "You answer for Acme, reply style {n}",
) -> Seeded:
    """Owners named `usernames`, and `columns` versions differing in temperature and `system` ({n} = number)."""
    users = [get_user_model().objects.create_user(name, password=PASSWORD) for name in usernames]
    workspace = Workspace(name="Bench", maxim_id="ws_default", base_url=fake.base_url)
    workspace.set_api_key(fake.api_key)
    workspace.save()
    for user in users:
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    remote_prompt = fake.add_prompt(workspace.maxim_id, "Support reply")
    prompt = Prompt.objects.create(workspace=workspace, maxim_id=remote_prompt["id"], name="Support reply")
    versions = []
    for number in range(1, columns + 1):
        version = PromptVersion(
            prompt=prompt,
            number=number,
            provider="openai",
            model_name="gpt-4o-mini",
            model_parameters={"temperature": round(0.1 * number, 1)},
            messages=[{"role": "system", "content": system.replace("{n}", str(number))}],
        )
        version.maxim_id = fake.add_version(
            NewVersion.from_content(prompt_id=version.prompt.maxim_id, content=version.content()).body()
        )["id"]
        version.save()
        versions.append(version)
    return Seeded(users, workspace, prompt, versions)
