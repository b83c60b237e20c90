"""One journey through the version builder in headless Chromium, against the fake Maxim server."""

from __future__ import annotations

import re

import pytest

from prompts_app.models import Draft, Prompt, PromptVersion, Run

pytestmark = pytest.mark.browser


@pytest.fixture
def served_prompt(fake_maxim, make_workspace, owner, editor):
    from prompts_app.models import Role

    workspace = make_workspace(
        owner=owner, maxim_id="ws_default", base_url=fake_maxim.base_url, members=[(editor, Role.EDITOR)]
    )
    known = fake_maxim.add_prompt("ws_default", "Support reply")
    return Prompt.objects.create(workspace=workspace, maxim_id=known["id"], name="Support reply")


def test_editor_builds_and_creates_a_version_with_a_variable_and_a_tool(
    page, browser_login, editor, served_prompt, fake_maxim
):
    browser_login(editor)
    page.goto(f"/prompts/{served_prompt.pk}/build/")
    page.fill("#id_m-0-text", "You are the support agent of Acme.")
    page.fill("#id_m-1-text", "Hello, my name is {{customer}}.")
    page.fill("#id_temperature", "0.3")
    # The model suggestions follow the provider.
    page.select_option("#id_provider", "anthropic")
    page.wait_for_selector("#model-suggestions option[value^='claude']", state="attached")
    page.select_option("#id_provider", "openai")
    page.wait_for_selector("#model-suggestions option[value='gpt-4o-mini']", state="attached")

    # Checking shows each problem next to its field, nothing typed is lost.
    page.click("button[value=check]")
    page.wait_for_selector("#builder-problems")
    assert "Choose a model, e.g. gpt-4o." in page.locator("#builder-settings").inner_text()
    page.screenshot(path="/tmp/shots/builder-errors.png")
    page.fill("#id_model_name", "gpt-4o-mini")

    # A structural action re-renders the form over htmx: everything typed stays.
    page.click("#add-tool")
    page.wait_for_selector("#tool-0")
    assert page.input_value("#id_m-1-text") == "Hello, my name is {{customer}}."
    assert page.input_value("#id_temperature") == "0.3"
    page.fill("#id_t-0-name", "lookup_order")
    page.fill("#id_t-0-description", "Find an order by its id")
    page.fill("#id_t-0-parameters", '{"type": "object", "properties": {"order_id": {"type": "string"}}}')

    # The autosave re-renders the status with the live variable list and stores the draft.
    page.wait_for_selector("#builder-variables code.var:has-text('customer')")
    assert Draft.objects.filter(prompt=served_prompt, user=editor).exists()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path="/tmp/shots/builder.png")

    page.click("#create-version")
    page.wait_for_url(re.compile(r"/versions/\d+/$"))
    version = PromptVersion.objects.get(prompt=served_prompt)
    assert page.url.endswith(f"/versions/{version.pk}/")
    assert "Created version 1 on Maxim." in page.content()
    assert page.locator("#version-messages").inner_text().count("Hello, my name is {{customer}}.") == 1
    assert "lookup_order" in page.locator("#version-tools").inner_text()
    page.screenshot(path="/tmp/shots/version.png", full_page=True)

    sent = fake_maxim.requests_to("/v1/prompts/versions", "POST")
    assert len(sent) == 1
    assert sent[0].body == {
        "promptId": served_prompt.maxim_id,
        "description": "",
        "modelName": "gpt-4o-mini",
        "modelProvider": "openai",
        "messages": [
            {"role": "system", "content": "You are the support agent of Acme."},
            {"role": "user", "content": "Hello, my name is {{customer}}."},
        ],
        "modelParameters": {
            "temperature": 0.3,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "lookup_order",
                        "description": "Find an order by its id",
                        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
                    },
                }
            ],
        },
    }
    assert version.source == PromptVersion.Source.CREATED and version.number == 1
    assert version.variables() == ["customer"]


# -- like a person: typing at human speed, pausing longer than the autosave ----------------------

AUTOSAVE_PAUSE_MS = 2600  # the autosave waits 1.5 s after the last key


def caret(page, selector: str) -> dict:
    return page.evaluate(
        "(s) => { const el = document.querySelector(s); return {focused: document.activeElement === el,"
        " start: el.selectionStart, end: el.selectionEnd, value: el.value}; }",
        selector,
    )


def type_into(page, name: str, text: str, role: str = "textbox", delay: int = 80) -> None:
    """Click the control with this label and type into it key by key."""
    page.get_by_role(role, name=name).click()
    page.keyboard.type(text, delay=delay)


def open_builder(page, browser_login, editor, prompt, base=None):
    browser_login(editor)
    page.goto(f"/prompts/{prompt.pk}/build/" + (f"?from={base.pk}" if base else ""))
    page.get_by_role("group", name="Message 1").wait_for()


def test_the_form_stays_with_focus_and_caret_while_the_draft_saves(page, browser_login, editor, served_prompt):
    open_builder(page, browser_login, editor, served_prompt)
    system = page.get_by_role("textbox", name="Content of message 1")
    system.click()
    page.keyboard.type("You are the support agent of Acme.", delay=80)
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)

    status = page.locator("#builder-status")
    assert "Draft saved" in status.inner_text()
    assert page.locator("form#builder").count() == 1 and system.is_visible()
    state = caret(page, "#id_m-0-text")
    assert state == {"focused": True, "start": 34, "end": 34, "value": "You are the support agent of Acme."}

    # Move the caret back into the text and keep typing: each key lands where the caret was.
    page.keyboard.press("ArrowLeft")
    page.keyboard.type(" Inc", delay=80)
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    state = caret(page, "#id_m-0-text")
    assert state == {"focused": True, "start": 37, "end": 37, "value": "You are the support agent of Acme Inc."}
    saved = Draft.objects.get(prompt=served_prompt, user=editor)
    assert saved.form_data["m-0-text"] == "You are the support agent of Acme Inc."
    assert saved.revision == 2

    # Typing in another field after a pause: the form is still whole, nothing typed is lost.
    type_into(page, "Content of message 2", "Hello, I am {{customer}}.")
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    assert page.locator("#builder-variables code.var").all_inner_texts() == ["customer"]
    assert caret(page, "#id_m-1-text")["focused"]
    assert page.input_value("#id_m-0-text") == "You are the support agent of Acme Inc."
    page.screenshot(path="/tmp/shots/builder-autosaved.png")


def test_ctrl_enter_creates_the_version(page, browser_login, editor, served_prompt, fake_maxim):
    open_builder(page, browser_login, editor, served_prompt)
    type_into(page, "Content of message 1", "You answer for Acme.")
    type_into(page, "Model", "gpt-4o-mini", role="combobox")
    type_into(page, "Content of message 2", "Where is my order?")
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)  # an autosave in between must not turn the shortcut into a save
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"/versions/\d+/$"))
    assert "Created version 1 on Maxim." in page.locator("#flash").inner_text()
    assert len(fake_maxim.requests_to("/v1/prompts/versions", "POST")) == 1
    assert PromptVersion.objects.get(prompt=served_prompt).messages[1]["content"] == "Where is my order?"


def test_check_brings_an_error_in_the_model_column_into_view(page, browser_login, editor, served_prompt):
    page.set_viewport_size({"width": 1400, "height": 600})
    open_builder(page, browser_login, editor, served_prompt)
    type_into(page, "Content of message 1", "You answer for Acme.", delay=60)
    type_into(page, "Content of message 2", "Hi", delay=60)
    page.get_by_role("textbox", name="Stop sequences").click()
    page.keyboard.type("a\nb\nc\nd\ne", delay=60)  # five: one too many, far down the model column
    page.get_by_role("button", name="Check").click()
    alert = page.locator("#builder-problems")
    alert.wait_for()
    assert "Check found 2 problems" in alert.inner_text()  # no model, five stop sequences
    model = page.get_by_role("combobox", name="Model")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'id_model_name'")
    box, view = model.bounding_box(), page.viewport_size
    assert 0 <= box["y"] and box["y"] + box["height"] <= view["height"]
    page.screenshot(path="/tmp/shots/builder-check.png")


def test_discard_asks_first_and_keep_editing_keeps_the_draft(page, browser_login, editor, served_prompt):
    open_builder(page, browser_login, editor, served_prompt)
    type_into(page, "Content of message 1", "Keep me")
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    page.reload()
    page.get_by_text("Discard draft…", exact=True).click()  # (the restore notice names it too)
    question = page.get_by_role("group", name=re.compile("Discard this draft"))
    question.wait_for()
    page.screenshot(path="/tmp/shots/builder-discard.png")
    page.get_by_role("button", name="Keep editing").click()
    question.wait_for(state="hidden")
    assert Draft.objects.filter(user=editor, created_version__isnull=True).exists()
    assert page.input_value("#id_m-0-text") == "Keep me"

    page.get_by_text("Discard draft…", exact=True).click()  # (the restore notice names it too)
    page.get_by_role("button", name="Discard", exact=True).click()
    page.get_by_text("Draft discarded.").wait_for()
    assert not Draft.objects.filter(user=editor).exists()
    assert page.input_value("#id_m-0-text") == ""
    # Once the person types again the note is old news (re-trial: it stayed through eighteen edits).
    type_into(page, "Content of message 1", "Starting over")
    page.get_by_text("Draft discarded.").wait_for(state="detached")


def test_trying_the_draft_shows_output_tokens_and_cost_beside_the_form(
    page, browser_login, editor, served_prompt, fake_maxim
):
    stored = fake_maxim.add_version(
        {
            "promptId": served_prompt.maxim_id,
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "messages": [{"role": "user", "content": "Hi"}],
            "modelParameters": {},
        }
    )
    base = PromptVersion.objects.create(
        prompt=served_prompt,
        maxim_id=stored["id"],
        number=1,
        provider="openai",
        model_name="gpt-4o",
        messages=[{"role": "user", "content": "Hi"}],
    )
    open_builder(page, browser_login, editor, served_prompt, base)
    message = page.get_by_role("textbox", name="Content of message 1")
    message.click()
    page.keyboard.press("End")
    page.keyboard.type(", I am {{name}}.", delay=80)
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)  # the save refreshes the playground's variables

    playground = page.get_by_role("region", name="Try the draft")
    name = playground.get_by_role("textbox", name="{{name}}")
    name.click()
    page.keyboard.type("Ann", delay=80)
    # ⌘/Ctrl+Enter in the playground runs the draft; it does not create the version.
    page.keyboard.press("Meta+Enter")
    result = playground.locator("#run-result")
    result.wait_for()
    text = result.inner_text()
    assert "Succeeded" in text and "tokens" in text and "$" in text
    assert playground.get_by_role("textbox", name="{{name}}").input_value() == "Ann"
    # The builder is untouched: same text, and still the page it was.
    assert message.input_value() == "Hi, I am {{name}}."
    assert "/build/" in page.url
    run = Run.objects.get()
    assert run.is_draft and run.version == base and run.total_tokens > 0
    sent = fake_maxim.requests_to("/v1/prompts/run", "POST")
    assert sent[-1].body["messages"] == [{"role": "user", "content": "Hi, I am Ann."}]
    assert PromptVersion.objects.filter(prompt=served_prompt).count() == 1
    page.screenshot(path="/tmp/shots/builder-playground.png")


def test_a_fixed_error_goes_away_while_typing_and_the_banner_counts_what_is_left(
    page, browser_login, editor, served_prompt, fake_maxim
):
    open_builder(page, browser_login, editor, served_prompt)
    type_into(page, "Content of message 1", "You answer for Acme.", delay=40)
    type_into(page, "Content of message 2", "Where is my order?", delay=40)
    type_into(page, "Model", "gpt-4o-mini", role="combobox", delay=40)
    type_into(page, "Stop sequences", "a\nb\nc\nd\ne", delay=40)  # five: one too many
    page.get_by_role("button", name="+ Add tool").click()
    tool = page.get_by_role("group", name="Tool 1")
    tool.get_by_role("textbox", name="Name", exact=True).click()
    page.keyboard.type("lookup_order", delay=40)
    parameters = page.get_by_role("textbox", name="Parameters (JSON Schema)")
    parameters.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('{"type": "object",', delay=40)  # cut off: not JSON
    page.keyboard.press("Control+Enter")
    banner = page.locator("#builder-problems")
    banner.wait_for()
    assert "The version was not created: fix the 2 problems" in banner.inner_text()
    assert tool.get_by_role("alert").count() == 1

    # Finish the JSON and pause: its error goes, the other stays, the banner counts one left.
    parameters.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(' "properties": {}}', delay=60)
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    assert tool.get_by_role("alert").count() == 0 and parameters.get_attribute("aria-invalid") is None
    assert "1 problem left" in banner.inner_text()
    assert page.locator("#builder-settings").get_by_role("alert").count() == 1  # the stop sequences
    assert caret(page, "#id_t-0-parameters")["focused"]  # typing goes on where it was

    # Break the JSON another way, and the temperature too: the errors say what is wrong now.
    page.keyboard.press("Control+A")
    page.keyboard.type("[1, 2, 3]", delay=60)
    type_into(page, "Temperature", "7", role="spinbutton", delay=60)
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    assert "JSON object" in tool.get_by_role("alert").inner_text()
    assert parameters.get_attribute("aria-invalid") == "true"
    assert "3 problems left" in banner.inner_text()
    settings_alerts = page.locator("#builder-settings").get_by_role("alert")
    assert settings_alerts.count() == 2 and "2" in settings_alerts.first.inner_text()  # temperature: 0–2

    parameters.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('{"type": "object", "properties": {}}', delay=30)
    page.get_by_role("spinbutton", name="Temperature").fill("")
    page.get_by_role("textbox", name="Stop sequences").click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.wait_for_timeout(AUTOSAVE_PAUSE_MS)
    assert "No problems left" in banner.inner_text()
    assert page.locator("form#builder").get_by_role("alert").count() == 0
    page.screenshot(path="/tmp/shots/builder-fixed.png", full_page=True)
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"/versions/\d+/$"))
    assert len(fake_maxim.requests_to("/v1/prompts/versions", "POST")) == 1


UNCOVERED = """(el) => { const r = el.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const top = document.elementFromPoint(x, y); return y > 0 && y < innerHeight && !!top && (top === el || el.contains(top)); }"""


def test_the_whole_model_column_is_reachable_on_a_laptop_screen(page, browser_login, editor, served_prompt):
    """New-user trial: the model column scrolled in a box of its own, cut after "Stop sequences" with no sign
    of more. Now the page scrolls it; the actions stay in sight and cover no field reached with the keyboard."""
    page.set_viewport_size({"width": 1280, "height": 720})
    open_builder(page, browser_login, editor, served_prompt)
    page.get_by_role("combobox", name="Provider").focus()
    reached = []
    for _ in range(12):  # Tab down the model column, as a person would
        page.keyboard.press("Tab")
        name = page.evaluate("document.activeElement.labels?.[0]?.innerText || ''")
        if name:
            reached.append(name)
            assert page.evaluate(UNCOVERED, page.evaluate_handle("document.activeElement")), name
    assert "Response format" in reached and "Other parameters (JSON object)" in reached
    create = page.get_by_role("button", name="Create version on Maxim")
    assert page.evaluate(UNCOVERED, create.element_handle())  # still in sight at the column's end
    for _ in range(4):  # and back up with Shift+Tab: each field stops below the actions, not under them
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(UNCOVERED, page.evaluate_handle("document.activeElement"))
