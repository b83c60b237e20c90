"""Shared helpers for the comparison tests (no tests here): versions to compare, a respx
Maxim that echoes, and seeding the FakeMaxim server with matching prompts and versions."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from prompts_app.maxim import NewVersion
from prompts_app.models import Prompt, PromptVersion, Workspace
from tests.conftest import BASE_URL
from tests.maxim_spec import validate_request


def make_version(prompt: Prompt, number: int, *, model: str = "gpt-4o", maxim_id: str | None = None, **extra):
    fields = {
        "provider": "openai",
        "model_parameters": {"temperature": 0.2},
        "messages": [
            {"role": "system", "content": "You answer for {{company}}."},
            {"role": "user", "content": "Hello, I am {{name}}."},
        ],
        "tools": [],
        **extra,
    }
    return PromptVersion.objects.create(
        prompt=prompt, maxim_id=maxim_id or f"{prompt.maxim_id}-v{number}", number=number, model_name=model, **fields
    )


@pytest.fixture
def inline_runs(settings):
    """Runs execute in the request's thread: the test DB lives in one transaction."""
    settings.MAXIMUI_COMPARE_INLINE = True


@pytest.fixture
def echo_maxim():
    """A respx Maxim whose run answers "Echo <model>: <last user turn>" and checks every body."""
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        sent.append(body)
        text = f"Echo {body['modelName']}: {body['messages'][-1]['content']}"
        usage = {"promptTokens": 10, "completionTokens": len(text.split()), "totalTokens": 10 + len(text.split())}
        output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return httpx.Response(200, json={"data": {"output": output, "usage": usage}})

    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        router.sent = sent
        yield router


def turn_data(*contents: str, prefix: str = "turn") -> dict:
    """A turn formset as the form posts it; the turns alternate user, assistant, user ..."""
    data = {f"{prefix}-TOTAL_FORMS": str(len(contents)), f"{prefix}-INITIAL_FORMS": str(len(contents))}
    for i, content in enumerate(contents):
        data[f"{prefix}-{i}-role"] = "assistant" if i % 2 else "user"
        data[f"{prefix}-{i}-content"] = content
    return data


def post_data(keys: list[str], *, message: str = "Where is my order?", **extra) -> dict:
    return {
        "columns": keys,
        "shared_input": "on",
        **turn_data(message),
        "var__company": "Acme",
        "var__name": "Ada",
        "repeats": "1",
        "title": "Tone check",
        **extra,
    }


def seed_fake(fake, workspace: Workspace, models: list[str], *, name: str = "Support reply") -> list[PromptVersion]:
    """One prompt with a version per model, both in the fake server and in our DB."""
    workspace.base_url = fake.base_url
    workspace.save()
    fake_prompt = fake.add_prompt(workspace.maxim_id, name)
    prompt = Prompt.objects.create(workspace=workspace, maxim_id=fake_prompt["id"], name=name)
    versions = []
    for number, model in enumerate(models, 1):
        local = PromptVersion(
            prompt=prompt, number=number, provider="openai", model_name=model,
            model_parameters={"temperature": round(0.1 * number, 1)},
            messages=[{"role": "system", "content": "You answer for {{company}}."}],
        )
        remote = fake.add_version(NewVersion.from_content(prompt_id=prompt.maxim_id, content=local.content()).body())
        local.maxim_id = remote["id"]
        local.save()
        versions.append(local)
    return versions


@pytest.fixture
def file_db(transactional_db):
    """Committed data, so the comparison's pool threads (own connections) see it.

    The test database is a SQLite file in WAL mode (see settings), where writers from
    several threads wait for each other as in production.
    """
    yield
    compare_wait()


def compare_wait() -> None:
    from prompts_app.services.compare import wait_for_background_runs

    wait_for_background_runs(timeout=30)
