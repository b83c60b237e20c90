"""Shared state for the tests, built in code: users in each role, a workspace, a prompt and a version,
and the fixtures and helpers that several test modules use (test modules never import each other)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from prompts_app import runner, streaming
from prompts_app.forms.builder import state_from_content, state_to_data
from prompts_app.maxim import NewVersion
from prompts_app.models import Membership, Prompt, PromptVersion, Role, Run, TestCase, TestSet, Workspace
from prompts_app.services import batch_worker, compare, rollups, run_watch
from prompts_app.services.compare import ColumnSpec
from tests.maxim_spec import validate_request


API_KEY = "test-key-1234"  # the key devtools/maxim_server.py accepts by default
BASE_URL = "https://maxim.test"


@pytest.fixture(autouse=True)
def slots_given_back():
    """A download or a watch stream the test client returned but the test never read keeps its
    slot (a server closes every response; the test client only closes what is read): give them back."""
    yield
    streaming.SLOTS.reset()
    run_watch.SLOTS.reset()


@pytest.fixture(autouse=True)
def immediate_runner(settings):
    """The runner (prompts_app/runner.py) sends in the test's own thread, where the test's
    uncommitted data is seen; tests on committed data (file_db) use the thread pool instead."""
    settings.MAXIMUI_RUNNER = "immediate"


@pytest.fixture
def make_user(db):
    def make(username: str, **extra):
        return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("olivia")


@pytest.fixture
def editor(make_user):
    return make_user("eddie")


@pytest.fixture
def viewer(make_user):
    return make_user("vera")


@pytest.fixture
def outsider(make_user):
    return make_user("mallory")


@pytest.fixture
def make_workspace(db):
    def make(*, owner, name="Acme", maxim_id="ws-1", base_url=BASE_URL, api_key=API_KEY, members=()):
        workspace = Workspace(name=name, maxim_id=maxim_id, base_url=base_url, created_by=owner)
        workspace.set_api_key(api_key)
        workspace.save()
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
        for user, role in members:
            Membership.objects.create(workspace=workspace, user=user, role=role)
        return workspace

    return make


@pytest.fixture
def workspace(make_workspace, owner, editor, viewer):
    return make_workspace(owner=owner, members=[(editor, Role.EDITOR), (viewer, Role.VIEWER)])


@pytest.fixture
def prompt(workspace):
    return Prompt.objects.create(workspace=workspace, maxim_id="prompt-1", name="Support reply")


@pytest.fixture
def version(prompt):
    return PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="version-1",
        number=1,
        description="First cut",
        provider="openai",
        model_name="gpt-4o",
        model_parameters={"temperature": 0.2, "max_tokens": 256},
        messages=[
            {"role": "system", "content": "You are a helpful support agent for {{company}}."},
            {"role": "user", "content": "Hello, I am {{name}}."},
        ],
        tools=[],
    )


@pytest.fixture
def client_for(client):
    """A Django test client logged in as the given user."""

    def login(user):
        client.force_login(user)
        return client

    return login


# --- browser tests -------------------------------------------------------------------------


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium driven by Playwright; never a downloaded browser."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for browser tests: .ci/run installs it")
        pytest.skip("browser tests need Chromium: `apt-get install chromium` (or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def browser_login(page, live_server):
    def login(user, password: str | None = None):
        page.goto("/login/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", password or "pw-" + user.get_username())
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return login


@pytest.fixture
def fake_maxim():
    """A Maxim-compatible server on loopback that checks every request against the spec."""
    from devtools.maxim_server import FakeMaxim

    with FakeMaxim() as server:
        yield server
    assert not server.violations, f"requests that break the spec: {server.violations}"


# --- runs (respx Maxim) -------------------------------------------------------
RUN_URL = "https://maxim.test/v1/prompts/run"


def run_answer(text: str = "Hi Ann, how can I help?", prompt_tokens: int = 20, completion_tokens: int = 7) -> dict:
    return {
        "data": {
            "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]},
            "usage": {
                "promptTokens": prompt_tokens,
                "completionTokens": completion_tokens,
                "totalTokens": prompt_tokens + completion_tokens,
            },
        }
    }


@pytest.fixture
def maxim():
    """A respx Maxim whose every run answers `run_answer()`."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(200, json=run_answer()))
        yield mock


def sent_bodies(mock) -> list[dict]:
    bodies = [json.loads(call.request.content) for call in mock.calls]
    for body in bodies:
        validate_request("POST", "/v1/prompts/run", body)
    return bodies


def run_form_data(**extra) -> dict:
    data = {
        "idempotency_key": "key-1",
        "turn-TOTAL_FORMS": "1",
        "turn-INITIAL_FORMS": "0",
        "turn-0-role": "user",
        "turn-0-content": "Where is my order?",
        "var__company": "Acme",
        "var__name": "Ann",
    }
    data.update(extra)
    return data


def run_url(version) -> str:
    return reverse("version_run", args=[version.pk])


# --- the version builder ------------------------------------------------------
VERSIONS_URL = "https://maxim.test/v1/prompts/versions"
CONTENT = {
    "description": "Friendlier",
    "provider": "openai",
    "model_name": "gpt-4o-mini",
    "model_parameters": {"temperature": 0.5},
    "messages": [
        {"role": "system", "content": "You answer for {{company}}."},
        {"role": "user", "content": "Hi, I am {{name}}."},
    ],
    "tools": [
        {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        }
    ],
}


def builder_form_data(content=CONTENT, action="save"):
    return {**state_to_data(state_from_content(content)), "action": action}


def builder_url(prompt, base=None):
    return f"/prompts/{prompt.pk}/build/" + (f"?from={base.pk}" if base else "")


def created_answer(body, number=2):
    wrappers = [
        {"id": f"m{i}", "index": i, "payload": m, "currentType": "message", "originalType": "message"}
        for i, m in enumerate(body["messages"])
    ]
    return {
        "data": {
            "id": "version-new",
            "version": number,
            "description": body["description"],
            "promptId": body["promptId"],
            "config": {
                "model": body["modelName"],
                "provider": body["modelProvider"],
                "messages": wrappers,
                "modelParameters": body["modelParameters"],
                "author": {"name": "Eddie E."},
            },
            "createdAt": "2026-01-02T03:04:05Z",
            "updatedAt": "2026-01-02T03:04:05Z",
        }
    }


# --- comparisons --------------------------------------------------------------


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
    """Runs execute in the request's thread: the test DB lives in one transaction. (The suite's
    default, immediate_runner above; named here for the tests that depend on it.)"""
    settings.MAXIMUI_RUNNER = "immediate"


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
            prompt=prompt,
            number=number,
            provider="openai",
            model_name=model,
            model_parameters={"temperature": round(0.1 * number, 1)},
            messages=[{"role": "system", "content": "You answer for {{company}}."}],
        )
        remote = fake.add_version(
            NewVersion.from_content(prompt_id=local.prompt.maxim_id, content=local.content()).body()
        )
        local.maxim_id = remote["id"]
        local.save()
        versions.append(local)
    return versions


@pytest.fixture
def file_db(transactional_db, settings):
    """Committed data, so the runner's pool threads (own connections) see it.

    The test database is a SQLite file in WAL mode (see settings), where writers from
    several threads wait for each other as in production.
    """
    settings.MAXIMUI_RUNNER = "thread"
    yield
    compare_wait()


def compare_wait() -> None:
    runner.wait(timeout=30)


# --- comparisons with runs ----------------------------------------------------


@pytest.fixture
def comparison(workspace, prompt, editor):
    a = make_version(prompt, 1, model_parameters={"temperature": 0.2, "max_tokens": 100})
    b = make_version(
        prompt,
        2,
        model="gpt-4o-mini",
        model_parameters={"temperature": 0.2},
        tools=[{"name": "lookup", "description": "", "parameters": {"type": "object", "properties": {}}}],
    )
    c = make_version(prompt, 3, messages=[{"role": "system", "content": "Be terse."}])
    comparison, created = compare.create_comparison(
        workspace=workspace,
        user=editor,
        columns=[ColumnSpec(a), ColumnSpec(b), ColumnSpec(c)],
        shared_input=True,
        input={"turns": [{"role": "user", "content": "Hi"}], "variables": {}},
        title="T",
    )
    assert created
    return comparison


def add_run(comparison, column, n: int, *, text: str = "", status=Run.Status.SUCCESS, batch: int = 1, **fields):
    defaults = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "latency_ms": 100.0, "cost_nano": 1000}
    comparison.batch = batch
    comparison.save()
    return Run.objects.create(
        workspace=comparison.workspace,
        prompt=column.version.prompt,
        version=column.version,
        comparison=comparison,
        column=column,
        batch=batch,
        repeat=n,
        status=status,
        provider="openai",
        model_name=column.version.model_name,
        output_text=text,
        finished_at=timezone.now(),
        **{**defaults, **fields},
    )


# --- run history --------------------------------------------------------------
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def make_run(
    version: PromptVersion,
    user,
    *,
    status: str = "success",
    created_at: dt.datetime = NOW,
    model_name: str | None = None,
    provider: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cost_nano: int | None = 1_000,
    latency_ms: float | None = 100.0,
    input_text: str = "hello",
    output_text: str = "world",
    error: str = "",
    record: bool = True,
    is_draft: bool = False,
) -> Run:
    """A run as execute_run leaves it (pending runs have no figures), added to the rollups."""
    finished = status != Run.Status.PENDING
    run = Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=user,
        status=status,
        provider=provider or version.provider,
        model_name=model_name if model_name is not None else version.model_name,
        input_text=input_text,
        output_text=output_text if finished else "",
        error=error,
        prompt_tokens=prompt_tokens if finished else 0,
        completion_tokens=completion_tokens if finished else 0,
        total_tokens=(prompt_tokens + completion_tokens) if finished else 0,
        cost_nano=cost_nano if status == Run.Status.SUCCESS else None,
        latency_ms=latency_ms if finished else None,
        created_at=created_at,
        is_draft=is_draft,
    )
    if record:
        rollups.record(run)
    return run


# --- deployments --------------------------------------------------------------


def conditions(*rows, action="deploy"):
    data = {"c-TOTAL_FORMS": str(len(rows)), "c-INITIAL_FORMS": str(len(rows)), "action": action}
    for i, (variable, operator, value) in enumerate(rows):
        data.update({f"c-{i}-variable": variable, f"c-{i}-operator": operator, f"c-{i}-value": value})
    return data


# --- settings in a fresh interpreter ------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SECRET_KEY": "s" * 50, "MAXIMUI_ENCRYPTION_KEYS": "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="}


def load_settings(env: dict[str, str], code: str = "import maximui.settings") -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", ""), "MAXIMUI_ENV_FILE": "", "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


# -- batch comparisons ---------------------------------------------------------------------


@pytest.fixture
def batch_inline(settings):
    settings.MAXIMUI_BATCH_INLINE = True  # one thread: the test's transaction holds the data


@pytest.fixture
def batch_test_set(workspace):
    test_set = TestSet.objects.create(workspace=workspace, name="Greetings", variable_names=["company", "name"])
    for n, name in enumerate(["Ada", "Grace", "Linus"], 1):
        TestCase.objects.create(
            test_set=test_set,
            position=n,
            variables={"company": "Acme", "name": name},
            expected_output=f"Echo gpt-4o: Hello, I am {name}.",
        )
    return test_set


@pytest.fixture
def two_versions(prompt):
    return [make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")]


def drive_batch(batch) -> None:
    """Send every cell of `batch` in this thread, the way a worker's tasks do one slice at a time."""
    while batch_worker.drive(batch.pk, slice_seconds=30):
        pass


def _test_database_url() -> str:
    """The test database (SQLite file or PostgreSQL), for a process started beside the tests."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(*, slice_seconds: int = 5) -> subprocess.Popen:
    """A real `manage.py db_worker` on the test database (a file: see file_db)."""
    env = {
        **os.environ,
        "MAXIMUI_TESTING": "1",
        "DATABASE_URL": _test_database_url(),
        "MAXIMUI_BATCH_SLICE_SECONDS": str(slice_seconds),
    }
    command = [
        sys.executable,
        "manage.py",
        "db_worker",
        "--backend",
        "database",
        "--no-startup-delay",
        "--interval",
        "0.1",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
