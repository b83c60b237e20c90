"""One journey in real Chromium: connect a workspace in two steps, then test its connection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prompts_app.models import Membership, Role, Workspace
from tests.conftest import API_KEY

SHOTS = Path("/tmp/shots")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_owner_connects_a_workspace_and_tests_the_connection(page, browser_login, owner, fake_maxim):
    fake_maxim.add_prompt("ws_staging", "Greeting")
    fake_maxim.add_prompt("ws_staging", "Summary")
    browser_login(owner)

    page.goto("/")
    page.get_by_text("No workspaces yet").wait_for()
    page.click("#connect-workspace")
    page.fill("#id_api_key", API_KEY)
    page.fill("#id_base_url", fake_maxim.base_url)
    page.click("text=Find workspaces")

    # htmx swaps step 2 in and pushes its URL; the key is not in the page.
    page.get_by_text("Staging (ws_staging)").click()
    page.wait_for_url("**/workspaces/connect/pick/")
    assert API_KEY not in page.content()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "workspace-connect.png"))
    page.click("button:has-text('Connect')")

    page.wait_for_url("**/settings/")
    assert page.inner_text("#masked-key") == "••••1234"
    page.click("#test-connection")
    page.get_by_text("Maxim shows 2 prompts").wait_for()

    workspace = Workspace.objects.get()
    assert (workspace.maxim_id, workspace.name, workspace.base_url) == ("ws_staging", "Staging", fake_maxim.base_url)
    assert Membership.objects.get(workspace=workspace).role == Role.OWNER
    listed = fake_maxim.requests_to("/v1/workspaces")
    assert len(listed) == 1 and listed[0].headers["x-maxim-api-key"] == API_KEY
    assert fake_maxim.requests_to("/v1/prompts")[-1].query["workspaceId"] == "ws_staging"

    page.screenshot(path=str(SHOTS / "workspace.png"), full_page=True)
    page.goto("/")
    page.screenshot(path=str(SHOTS / "workspace-list.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_add_a_price_fields_line_up_with_one_line_labels(page, browser_login, owner, workspace):
    """New-user trial: "Output $ / 1M tokens" broke over two lines and pushed its box below the others."""
    browser_login(owner)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/workspaces/{workspace.pk}/settings/")
    form = page.get_by_role("form", name="Add a price")
    names = (re.compile(r"^Model"), re.compile(r"^Input \$"), re.compile(r"^Output \$"))
    boxes = [form.get_by_label(name).bounding_box() for name in names]
    assert max(box["y"] for box in boxes) - min(box["y"] for box in boxes) < 2, boxes
    button = form.get_by_role("button", name="Add price").bounding_box()
    assert abs((button["y"] + button["height"]) - (boxes[0]["y"] + boxes[0]["height"])) < 4  # on the same line
