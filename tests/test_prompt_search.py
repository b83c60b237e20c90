"""The prompt list: search by name (htmx as you type, a plain GET without it) and deployed versions marked."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from prompts_app.models import Deployment, Prompt, PromptVersion


@pytest.fixture
def prompts(workspace):
    names = ["Support reply", "Refund triage", "Support escalation", "Onboarding email"]
    return [Prompt.objects.create(workspace=workspace, maxim_id=f"p-{i}", name=name) for i, name in enumerate(names)]


def list_url(workspace, query: str | None = None) -> str:
    url = f"/workspaces/{workspace.pk}/prompts/"
    return url if query is None else f"{url}?q={query}"


def test_search_keeps_only_prompts_with_the_words_in_their_name(client_for, viewer, workspace, prompts):
    response = client_for(viewer).get(list_url(workspace, "SUPPORT"))
    html = response.content.decode()
    assert [p.name for p in response.context["prompts"]] == ["Support escalation", "Support reply"]
    assert "Refund triage" not in html and "Onboarding email" not in html
    assert 'value="SUPPORT"' in html  # the box keeps what was typed
    assert "2 prompts with" in html
    both = client_for(viewer).get(list_url(workspace, "reply%20supp")).context["prompts"]
    assert [p.name for p in both] == ["Support reply"]  # every word, in any order


def test_search_form_works_without_javascript_and_asks_htmx_for_the_results(client_for, viewer, workspace, prompts):
    html = client_for(viewer).get(list_url(workspace)).content.decode()
    assert 'role="search"' in html and 'method="get"' in html and 'name="q"' in html
    assert 'for="prompt-q"' in html and 'id="prompt-q"' in html  # the box has a label
    assert 'hx-trigger="input changed delay:300ms"' in html and 'hx-push-url="true"' in html
    assert 'hx-target="#prompt-results"' in html and 'hx-sync="this:replace"' in html


def test_htmx_gets_only_the_results_and_a_reload_gets_the_page(client_for, viewer, workspace, prompts):
    client = client_for(viewer)
    partial = client.get(list_url(workspace, "refund"), headers={"HX-Request": "true"})
    html = partial.content.decode()
    assert html.lstrip().startswith("{#") is False and "<html" not in html
    assert 'id="prompt-results"' in html and "Refund triage" in html and "Support reply" not in html
    assert "HX-Request" in partial["Vary"]
    restore = client.get(
        list_url(workspace, "refund"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.content.decode()


def test_a_search_without_matches_says_so_and_offers_the_whole_list(client_for, viewer, workspace, prompts):
    html = client_for(viewer).get(list_url(workspace, "<b>nothing</b>")).content.decode()
    assert "No prompt has" in html and "&lt;b&gt;nothing&lt;/b&gt;" in html and "<b>nothing</b>" not in html
    assert f'href="{list_url(workspace)}"' in html


def test_a_huge_query_is_cut_not_refused(client_for, viewer, workspace, prompts):
    response = client_for(viewer).get(list_url(workspace, "S" * 50_000))
    assert response.status_code == 200 and response.context["query"] == "S" * 200


def test_search_stays_inside_the_workspace(client_for, outsider, workspace, prompts, make_workspace):
    make_workspace(owner=outsider, name="Elsewhere", maxim_id="ws-x")
    assert client_for(outsider).get(list_url(workspace, "support")).status_code == 404


# -- deployed versions ---------------------------------------------------------------------------


def deploy(version, conditions, *, minutes_ago: int, error: str = "") -> Deployment:
    when = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return Deployment.objects.create(
        version=version, conditions=conditions, status="failed" if error else "active", error=error, created_at=when
    )


def test_prompt_page_marks_deployed_versions_with_their_conditions(client_for, viewer, version):
    v2 = PromptVersion.objects.create(prompt=version.prompt, maxim_id="version-2", number=2, model_name="gpt-4o")
    v3 = PromptVersion.objects.create(prompt=version.prompt, maxim_id="version-3", number=3, model_name="gpt-4o")
    prod = [{"variable": "env", "operator": "=", "value": "prod"}]
    deploy(version, prod, minutes_ago=30)  # replaced by v2 for the same conditions
    deploy(v2, prod, minutes_ago=10)
    deploy(version, [{"variable": "env", "operator": "=", "value": "staging"}], minutes_ago=5)
    deploy(v3, prod, minutes_ago=1, error="Maxim said no")  # a failed deploy changes nothing

    response = client_for(viewer).get(f"/prompts/{version.prompt.pk}/")

    deployed = {v.number: [d.conditions[0]["value"] for d in v.live_deployments] for v in response.context["versions"]}
    assert deployed == {3: [], 2: ["prod"], 1: ["staging"]}
    html = response.content.decode()
    assert html.count(">deployed</span>") == 2
    assert "env = prod</code>" in html and "env = staging</code>" in html
    listing = client_for(viewer).get(list_url(version.prompt.workspace)).content.decode()
    deployed_cell = listing.split('class="deployed-version"', 1)[1]
    assert f'href="/versions/{v2.pk}/">v2</a>' in deployed_cell and listing.count('class="deployed-version"') == 2


def test_versions_table_and_sections_have_accessible_names(client_for, viewer, version):
    PromptVersion.objects.create(prompt=version.prompt, maxim_id="version-2", number=2, model_name="gpt-4o")
    html = client_for(viewer).get(f"/prompts/{version.prompt.pk}/").content.decode()
    assert 'id="version-list" aria-label="Versions of this prompt"' in html
    assert 'aria-labelledby="versions-heading"' in html and 'aria-labelledby="compare-picker-title"' in html
    listing = client_for(viewer).get(f"/workspaces/{version.prompt.workspace.pk}/prompts/").content.decode()
    assert 'id="prompt-list" aria-label="Prompts in this workspace"' in listing


@pytest.mark.browser
def test_typing_in_the_search_box_filters_the_list_and_keeps_the_query_in_the_url(page, browser_login, editor, prompts):
    workspace = prompts[0].workspace
    browser_login(editor)
    page.goto(list_url(workspace))
    rows = page.get_by_role("table", name="Prompts in this workspace").locator("tbody tr")
    assert rows.count() == 4
    box = page.get_by_role("searchbox", name="Search by name")
    box.press_sequentially("supp", delay=80)
    page.wait_for_timeout(700)  # longer than the 300 ms debounce
    page.wait_for_url(lambda url: "q=supp" in url)
    assert rows.count() == 2 and "Refund triage" not in page.locator("#prompt-results").inner_text()
    assert page.get_by_text("2 prompts with").is_visible()
    assert box.input_value() == "supp"  # the box was not swapped: nothing typed is lost

    page.reload()  # the URL alone brings the same results back
    assert rows.count() == 2 and page.get_by_role("searchbox", name="Search by name").input_value() == "supp"

    box = page.get_by_role("searchbox", name="Search by name")
    box.fill("")
    box.press_sequentially("onbo", delay=80)
    with page.expect_navigation():
        box.press("Enter")  # the plain form: a full GET that works without JavaScript too
    assert "q=onbo" in page.url
    assert rows.count() == 1 and "Onboarding email" in page.locator("#prompt-results").inner_text()

    box = page.get_by_role("searchbox", name="Search by name")
    box.fill("refund")
    with page.expect_navigation():
        box.press("Control+Enter")  # the shortcut submits the search, not the "new prompt" form below it
    assert "q=refund" in page.url and rows.count() == 1 and Prompt.objects.count() == 4


@pytest.mark.browser
def test_the_shortcut_list_names_what_ctrl_enter_does_on_the_prompt_and_deploy_pages(
    page, browser_login, editor, version
):
    browser_login(editor)
    page.goto(f"/versions/{version.pk}/deploy/")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    assert (
        "deploy (deploy page)" in dialog.inner_text() and "create the prompt (new prompt form)" in dialog.inner_text()
    )
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
