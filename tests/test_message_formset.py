"""The messages formset: structural actions keep every row's data; each rule has its own message."""

from __future__ import annotations

import copy

import pytest

from prompts_app.forms.builder import BuilderForm, apply_action, state_from_content, state_from_data, state_to_data
from prompts_app.forms.versions import MAX_MESSAGE_CHARS, MAX_MESSAGES, MAX_PARTS

BASE = {
    "description": "",
    "provider": "openai",
    "model_name": "gpt-4o",
    "model_parameters": {},
    "messages": [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://img/1.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        },
        {"role": "tool", "content": "result", "tool_call_id": "call_1"},
    ],
    "tools": [],
}


def act(content, *actions):
    """Apply actions the way the view does: POST data -> state -> action -> fresh POST data."""
    data = state_to_data(state_from_content(content))
    for action in actions:
        data = state_to_data(apply_action(state_from_data(data), action))
    return BuilderForm(data)


def messages_after(*actions, content=BASE):
    form = act(content, *actions)
    assert form.is_valid(), form.messages.errors
    return form.content()["messages"]


def errors_of(form):
    """Every error message in the messages formset, flattened."""
    found = list(form.messages.non_form_errors())
    for m in form.messages:
        found += [e for errors in m.errors.values() for e in errors]
        for sub in [*m.parts, *m.tool_calls]:
            found += [e for errors in sub.errors.values() for e in errors]
    return found


def with_messages(messages):
    content = copy.deepcopy(BASE)
    content["messages"] = messages
    return content


def test_add_message_appends_an_empty_row_and_keeps_the_others():
    form = act(BASE, "add_message")
    assert len(form.messages.forms) == 5
    assert form.messages.forms[4]["role"].value() == "assistant"  # the model answers the tool result
    assert form.messages.forms[4]["text"].value() == ""
    assert [f["text"].value() for f in form.messages.forms[:4]] == ["sys", "", "", "result"]
    assert form.messages.forms[1].parts.forms[1]["url"].value() == "https://img/1.png"


@pytest.mark.parametrize(
    "last, added",
    [("system", "user"), ("user", "assistant"), ("assistant", "user"), ("tool", "assistant"), (None, "system")],
)
def test_add_message_adds_the_role_that_usually_comes_next(last, added):
    content = with_messages([{"role": last, "content": "x"}] if last else [])
    form = act(content, "add_message")
    assert form.messages.forms[-1]["role"].value() == added


def test_remove_message_drops_only_that_row():
    assert messages_after("remove_message:0") == BASE["messages"][1:]


def test_move_up_and_down_swap_rows_with_all_their_parts_and_calls():
    moved = messages_after("move_down:0")
    assert moved == [BASE["messages"][1], BASE["messages"][0], *BASE["messages"][2:]]
    assert messages_after("move_down:0", "move_up:1") == BASE["messages"]


def test_moving_past_either_end_changes_nothing():
    assert messages_after("move_up:0", "move_down:3") == BASE["messages"]


def test_duplicate_copies_the_row_below_itself():
    assert messages_after("duplicate_message:1") == [BASE["messages"][0], BASE["messages"][1], *BASE["messages"][1:]]


def test_add_and_remove_part_keep_the_other_parts():
    form = act(BASE, "add_part:1")
    parts = form.messages.forms[1].parts.forms
    assert [p["type"].value() for p in parts] == ["text", "image_url", "text"]
    assert messages_after("add_part:1", "remove_part:1:2") == BASE["messages"]
    assert messages_after("remove_part:1:0")[1]["content"] == [BASE["messages"][1]["content"][1]]


def test_add_part_on_plain_text_turns_the_text_into_the_first_part():
    form = act(BASE, "add_part:0")
    parts = form.messages.forms[0].parts.forms
    assert [p["text"].value() for p in parts] == ["sys", ""]


def test_to_parts_and_back_to_text_keep_the_text():
    assert messages_after("to_parts:0")[0]["content"] == [{"type": "text", "text": "sys"}]
    assert messages_after("to_parts:0", "to_text:0")[0]["content"] == "sys"


def test_to_text_is_refused_while_an_image_part_exists():
    assert messages_after("to_text:1")[1] == BASE["messages"][1]


def test_add_and_remove_tool_calls_keep_the_other_calls():
    form = act(BASE, "add_tool_call:2")
    calls = form.messages.forms[2].tool_calls.forms
    assert [c["id"].value() for c in calls] == ["call_1", "call_2"]
    assert [c["arguments"].value() for c in calls] == ['{"a": 1}', "{}"]
    assert messages_after("add_tool_call:2", "remove_tool_call:2:1") == BASE["messages"]


def test_every_action_in_a_row_keeps_typed_data_in_unrelated_rows():
    form = act(
        BASE,
        "add_message",
        "duplicate_message:0",
        "move_down:0",
        "add_part:2",
        "remove_part:2:2",
        "add_tool_call:3",
        "remove_tool_call:3:1",
        "move_up:1",
        "remove_message:5",
    )
    assert form.is_valid()
    assert form.content()["messages"] == [BASE["messages"][0], BASE["messages"][0], *BASE["messages"][1:]]


# -- validation rules ---------------------------------------------------------------------


def test_all_six_roles_are_accepted():
    roles = ["system", "user", "assistant", "tool", "model", "chatbot"]
    messages = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]
    messages += [{"role": r, "content": "x", **({"tool_call_id": "c"} if r == "tool" else {})} for r in roles]
    assert messages_after(content=with_messages(messages)) == messages


def test_an_unknown_role_is_rejected():
    form = act(with_messages([{"role": "wizard", "content": "x"}]))
    assert not form.is_valid()
    assert any(e.startswith("Message 1: Select a valid choice") for e in errors_of(form))


def test_an_empty_message_is_rejected_with_its_number():
    form = act(with_messages([{"role": "system", "content": "a"}, {"role": "user", "content": "  "}]))
    assert not form.is_valid()
    assert "Message 2: the message is empty; write something or remove it." in errors_of(form)


def test_a_version_needs_at_least_one_message():
    form = act(with_messages([]))
    assert not form.is_valid()
    assert "Add at least one message." in errors_of(form)


def test_at_most_100_messages():
    form = act(with_messages([{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)))
    assert not form.is_valid()
    assert f"A version can have at most 100 messages; this one has {MAX_MESSAGES + 1}." in errors_of(form)


def test_a_message_over_100000_characters_is_rejected():
    form = act(with_messages([{"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}]))
    assert not form.is_valid()
    assert "Message 1: this message is 100,001 characters long; the limit is 100,000." in errors_of(form)


def test_a_too_long_message_gets_that_one_error_and_is_not_also_called_empty():
    form = act(with_messages([{"role": "user", "content": "x" * 102_410}]))
    assert not form.is_valid()
    assert errors_of(form) == ["Message 1: this message is 102,410 characters long; the limit is 100,000."]


def test_a_too_long_message_in_parts_gets_one_error():
    parts = [{"type": "text", "text": "x" * 60_000}, {"type": "text", "text": "y" * 60_000}]
    form = act(with_messages([{"role": "user", "content": parts}]))
    assert errors_of(form) == ["Message 1: this message is 120,000 characters long; the limit is 100,000."]


def test_at_most_20_parts():
    parts = [{"type": "text", "text": "p"}] * (MAX_PARTS + 1)
    form = act(with_messages([{"role": "user", "content": parts}]))
    assert not form.is_valid()
    assert "Message 1: 21 parts; the limit is 20 per message." in errors_of(form)


def test_an_image_part_needs_an_http_url():
    form = act(with_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]))
    assert not form.is_valid()
    assert "Message 1, part 1: the image URL must start with http://, https:// or data:image/." in errors_of(form)


def test_an_image_detail_outside_auto_low_high_is_rejected():
    form = act(
        with_messages(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "ultra"}}],
                }
            ]
        )
    )
    assert not form.is_valid()
    assert any(e.startswith("Message 1, part 1: Select a valid choice") for e in errors_of(form))


def test_tool_call_arguments_must_be_json():
    messages = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{a: 1}"}}],
        }
    ]
    form = act(with_messages(messages))
    assert not form.is_valid()
    errors = errors_of(form)
    assert any(
        e.startswith("Message 1, tool call 1: the arguments are not valid JSON: Expecting property name")
        for e in errors
    )


def test_only_assistant_messages_carry_tool_calls():
    messages = [
        {
            "role": "user",
            "content": "x",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]
    form = act(with_messages(messages))
    assert not form.is_valid()
    assert "Message 1: only assistant messages can carry tool calls; change the role or remove the calls." in errors_of(
        form
    )


def test_a_tool_message_needs_a_tool_call_id():
    form = act(with_messages([{"role": "tool", "content": "42"}]))
    assert not form.is_valid()
    assert "Message 1: a tool message needs the id of the tool call it answers." in errors_of(form)


def test_a_tool_call_id_must_match_an_earlier_tool_call():
    messages = [{"role": "tool", "content": "42", "tool_call_id": "call_1"}, *BASE["messages"][2:3]]
    form = act(with_messages(messages))
    assert not form.is_valid()
    assert "Message 1: no earlier assistant message has a tool call with id “call_1”." in errors_of(form)


@pytest.mark.parametrize("role", ["user", "system"])
def test_only_tool_messages_carry_a_tool_call_id(role):
    form = act(with_messages([{"role": role, "content": "x", "tool_call_id": "c"}]))
    assert not form.is_valid()
    assert "Message 1: only tool messages answer a tool call; clear this or change the role." in errors_of(form)


def test_garbage_management_data_reads_as_no_rows_instead_of_crashing():
    state = state_from_data({"m-TOTAL_FORMS": "many", "t-TOTAL_FORMS": "-3", "model_name": "x"})
    assert state["messages"] == [] and state["tools"] == []
    capped = state_from_data({"m-TOTAL_FORMS": "99999999"})
    assert len(capped["messages"]) == 101  # one past MAX_MESSAGES: the "at most 100" error still shows
