"""Shared state for the tests, built in code: users in each role, a workspace, a prompt and a version."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from prompts_app.models import Membership, Prompt, PromptVersion, Role, Workspace

API_KEY = "test-key-1234"  # the key devtools/maxim_server.py accepts by default
BASE_URL = "https://maxim.test"


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
import os
import shutil

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
