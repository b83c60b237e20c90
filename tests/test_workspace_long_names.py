"""Long unbroken names, IDs and URLs wrap on the workspace pages instead of widening them."""

from __future__ import annotations

import pytest

from prompts_app.models import CustomPrice, Role

LONG = "W" * 300


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_workspace_page_is_wider_than_the_viewport(page, browser_login, make_workspace, owner, viewer):
    page.set_viewport_size({"width": 800, "height": 900})
    workspace = make_workspace(
        owner=owner,
        name=LONG,
        maxim_id="id-" + "x" * 190,
        base_url="https://maxim.test/" + "p" * 300,
        members=[(viewer, Role.VIEWER)],
    )
    CustomPrice.objects.create(
        workspace=workspace, model_pattern="m" * 200, input_usd_per_mtok=1, output_usd_per_mtok=2
    )
    for user in (owner, viewer):
        page.context.clear_cookies()
        browser_login(user)
        for path in ["/", f"/workspaces/{workspace.pk}/settings/", f"/workspaces/{workspace.pk}/delete/"]:
            response = page.goto(path)
            if response.status != 200:
                assert user == viewer and response.status == 403  # a viewer cannot open the delete page
                continue
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{path} as {user} is {widths[0]}px wide in a {widths[1]}px window"
    # The controls keep names a screen reader can say.
    page.goto(f"/workspaces/{workspace.pk}/settings/")
    page.get_by_role("region", name="Connection").wait_for()
