"""The Maxim client at the HTTP boundary: what it sends, how it reads answers, how it fails."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from prompts_app import maxim
from prompts_app.maxim import (
    Credentials,
    MaximClient,
    MaximError,
    ModelChoice,
    NewDeployment,
    NewPrompt,
    NewVersion,
    client_for,
)
from tests.maxim_spec import validate_httpx_request, validate_request

BASE = "https://maxim.example.test"
KEY = "sk-maxim-SECRET-0123456789abcdef"

# A run body as stored on a Run (the client sends a stored body exactly as it is).
RUN = {
    "promptId": "prm_1",
    "versionId": "ver_1",
    "workspaceId": "ws_1",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "modelName": "gpt-4o",
    "modelProvider": "openai",
    "modelParameters": {"temperature": 0.2},
}
VERSION_MESSAGES = [
    {"role": "user", "content": "What is the weather?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}],
    },
    {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
]
NEW_VERSION = NewVersion(
    prompt_id="prm_1",
    description="shorter",
    messages=VERSION_MESSAGES,
    model=ModelChoice(name="gpt-4o", provider="openai", parameters={"temperature": 0.5}, tools=[]),
)
NEW_VERSION_BODY = {
    "promptId": "prm_1",
    "description": "shorter",
    "modelName": "gpt-4o",
    "modelProvider": "openai",
    "messages": VERSION_MESSAGES,
    "modelParameters": {"temperature": 0.5},
}
CONDITIONS = [{"variable": "env", "operator": "=", "value": "prod"}]
DEPLOY = NewDeployment(prompt_id="prm_1", version_id="ver_2", workspace_id="ws_1", conditions=CONDITIONS)
DEPLOY_BODY = {"promptId": "prm_1", "versionId": "ver_2", "workspaceId": "ws_1", "deploymentConditions": CONDITIONS}
PROMPT = {
    "id": "prm_1",
    "name": "Greeter",
    "description": "says hi",
    "workspaceId": "ws_1",
    "folderId": None,
    "createdAt": "2025-05-01T00:00:00Z",
    "updatedAt": "2025-05-02T00:00:00Z",
}


def version_object(id: str = "ver_1", number: int = 1) -> dict:
    return {
        "id": id,
        "version": number,
        "description": f"v{number}",
        "promptId": "prm_1",
        "config": {
            "model": "gpt-4o",
            "provider": "openai",
            "modelParameters": {"temperature": 0.5},
            "author": {"id": "u1", "name": "Ada", "email": "ada@example.com", "image": ""},
            "messages": [
                {
                    "id": "m2",
                    "index": 1,
                    "payload": {"role": "user", "content": "Hi"},
                    "currentType": "message",
                    "originalType": "message",
                },
                {
                    "id": "m1",
                    "index": 0,
                    "payload": {"role": "system", "content": "Be brief."},
                    "currentType": "message",
                    "originalType": "message",
                },
            ],
        },
        "createdAt": "2025-05-01T00:00:00Z",
        "updatedAt": "2025-05-01T00:00:00Z",
        "deletedAt": None,
    }


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeMaxim:
    """Answers in order; records every request and checks it against the spec and for the key."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["x-maxim-api-key"] == KEY
        assert request.headers["user-agent"].startswith("maximui/")
        assert request.headers["accept"] == "application/json"
        validate_httpx_request(request)
        assert self.answers, f"unexpected extra request {request.method} {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[dict | None]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def queries(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests]


def ok(body: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def fail(status: int, body: object = None, *, text: str | None = None, **headers: str) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(sleeps: list[float]) -> Callable[..., tuple[MaximClient, FakeMaxim]]:
    def make(*answers: Answer, **options: object) -> tuple[MaximClient, FakeMaxim]:
        fake = FakeMaxim(*answers)
        http = httpx.Client(transport=httpx.MockTransport(fake))
        return MaximClient(BASE, KEY, http=http, sleep=sleeps.append, **options), fake

    return make


def raising(exc_type: type[httpx.TransportError], cause: BaseException | None = None) -> Callable:
    """An answer that fails like httpx does, with the socket error chained underneath."""

    def answer(request: httpx.Request) -> httpx.Response:
        try:
            if cause is not None:
                raise cause
            raise OSError("boom")
        except OSError as exc:
            raise exc_type("transport failed", request=request) from exc

    return answer


# -- workspaces and pagination ----------------------------------------------------------


def test_list_workspaces_follows_next_cursor(make):
    client, fake = make(
        ok({"data": [{"id": "ws_1", "name": "One"}], "pagination": {"nextCursor": "c2", "hasMore": True}}),
        ok({"data": [{"id": "ws_2", "name": "Two"}], "pagination": {"nextCursor": None, "hasMore": False}}),
    )
    workspaces = client.list_workspaces()
    assert [(w.id, w.name) for w in workspaces] == [("ws_1", "One"), ("ws_2", "Two")]
    assert fake.queries() == [{"limit": "100"}, {"limit": "100", "cursor": "c2"}]
    assert all(r.method == "GET" and r.url.path == "/v1/workspaces" for r in fake.requests)


def test_pagination_also_reads_a_field_named_cursor(make):
    client, fake = make(
        ok({"data": [{"id": "ws_1"}], "pagination": {"cursor": "abc"}}),
        ok({"data": [{"id": "ws_2"}], "pagination": {}}),
    )
    assert [w.id for w in client.list_workspaces()] == ["ws_1", "ws_2"]
    assert fake.queries()[1]["cursor"] == "abc"


def test_pagination_stops_when_has_more_is_false_even_with_a_cursor(make):
    client, fake = make(ok({"data": [{"id": "ws_1"}], "pagination": {"nextCursor": "c2", "hasMore": False}}))
    assert len(client.list_workspaces()) == 1
    assert len(fake.requests) == 1


def test_pagination_stops_when_the_server_repeats_a_cursor(make):
    page = ok({"data": [{"id": "ws_1"}], "pagination": {"nextCursor": "same", "hasMore": True}})
    client, fake = make(page, page)
    assert len(client.list_workspaces()) == 2
    assert len(fake.requests) == 2


def test_pagination_is_bounded_when_cursors_never_end(make):
    pages = [
        ok({"data": [{"id": f"ws_{n}"}], "pagination": {"nextCursor": f"c{n}", "hasMore": True}})
        for n in range(maxim.MAX_PAGES)
    ]
    client, fake = make(*pages)
    assert len(client.list_workspaces()) == maxim.MAX_PAGES
    assert len(fake.requests) == maxim.MAX_PAGES


def test_pagination_stops_on_an_empty_page_with_a_cursor(make):
    client, fake = make(ok({"data": [], "pagination": {"nextCursor": "c2", "hasMore": True}}))
    assert client.list_workspaces() == []
    assert len(fake.requests) == 1


# -- prompts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"data": [PROMPT], "pagination": {"nextCursor": None, "hasMore": False}},  # what Maxim likely sends
        {"data": PROMPT},  # one object in the envelope
        PROMPT,  # one bare object, as documented
        [PROMPT],  # a bare list
    ],
    ids=["envelope-list", "envelope-object", "bare-object", "bare-list"],
)
def test_list_prompts_accepts_every_known_form(make, answer):
    client, fake = make(ok(answer))
    [prompt] = client.list_prompts("ws_1")
    assert (prompt.id, prompt.name, prompt.description) == ("prm_1", "Greeter", "says hi")
    assert (prompt.workspace_id, prompt.folder_id) == ("ws_1", None)
    assert (prompt.created_at, prompt.updated_at) == ("2025-05-01T00:00:00Z", "2025-05-02T00:00:00Z")
    assert fake.queries() == [{"workspaceId": "ws_1", "limit": "100"}]


@pytest.mark.parametrize("answer", [{"data": []}, {"data": None}, []])
def test_list_prompts_reads_an_empty_workspace(make, answer):
    client, _ = make(ok(answer))
    assert client.list_prompts("ws_1") == []


def test_list_prompts_follows_pagination(make):
    second = {**PROMPT, "id": "prm_2"}
    client, fake = make(
        ok({"data": [PROMPT], "pagination": {"cursor": "p2", "hasMore": True}}),
        ok({"data": [second], "pagination": {"hasMore": False}}),
    )
    assert [p.id for p in client.list_prompts("ws_1")] == ["prm_1", "prm_2"]
    assert fake.queries()[1] == {"workspaceId": "ws_1", "limit": "100", "cursor": "p2"}


@pytest.mark.parametrize("answer", [{"data": {"data": PROMPT}}, {"data": PROMPT}], ids=["double-wrap", "single"])
def test_create_prompt_reads_both_envelopes(make, answer):
    client, fake = make(ok(answer, status=201))
    prompt = client.create_prompt(NewPrompt(workspace_id="ws_1", name="Greeter", description="says hi"))
    assert prompt.id == "prm_1"
    assert fake.requests[0].method == "POST" and fake.requests[0].url.path == "/v1/prompts"
    assert fake.bodies() == [{"workspaceId": "ws_1", "name": "Greeter", "description": "says hi"}]


def test_create_prompt_sends_the_folder_when_given(make):
    client, fake = make(ok({"data": {"data": {**PROMPT, "folderId": "fld_1"}}}, status=201))
    assert client.create_prompt(NewPrompt(workspace_id="ws_1", name="Greeter", folder_id="fld_1")).folder_id == "fld_1"
    assert fake.bodies()[0]["folderId"] == "fld_1"


# -- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [{"data": version_object()}, {"data": [version_object()]}], ids=["object", "list"])
def test_list_versions_accepts_one_object_or_a_list(make, answer):
    client, fake = make(ok(answer))
    [version] = client.list_versions("prm_1")
    assert (version.id, version.version, version.prompt_id, version.description) == ("ver_1", 1, "prm_1", "v1")
    assert (version.model, version.provider, version.author_name) == ("gpt-4o", "openai", "Ada")
    assert version.model_parameters == {"temperature": 0.5}
    # The raw wrappers are kept, sorted by index.
    assert [m["id"] for m in version.messages] == ["m1", "m2"]
    assert version.messages[0]["payload"] == {"role": "system", "content": "Be brief."}
    assert fake.queries() == [{"promptId": "prm_1"}]


def test_list_versions_sorts_oldest_first_and_follows_pagination(make):
    client, fake = make(
        ok({"data": [version_object("ver_3", 3)], "pagination": {"nextCursor": "n2", "hasMore": True}}),
        ok({"data": [version_object("ver_1", 1), version_object("ver_2", 2)]}),
    )
    assert [v.version for v in client.list_versions("prm_1")] == [1, 2, 3]
    assert fake.queries()[1] == {"promptId": "prm_1", "cursor": "n2"}


def test_a_version_without_config_is_read_with_empty_defaults(make):
    client, _ = make(ok({"data": {"id": "ver_9", "version": 9}}))
    [version] = client.list_versions("prm_1")
    assert (version.model, version.messages, version.model_parameters, version.author_name) == ("", [], {}, "")


def test_create_version_sends_the_payload_exactly(make):
    client, fake = make(ok({"data": version_object("ver_2", 2)}))
    version = client.create_version(NEW_VERSION)
    assert (version.id, version.version) == ("ver_2", 2)
    assert fake.requests[0].url.path == "/v1/prompts/versions"
    assert fake.bodies() == [NEW_VERSION_BODY]


# -- run -------------------------------------------------------------------------------------


def test_run_with_a_string_output(make):
    client, fake = make(
        ok({"data": {"output": "Hello!", "usage": {"promptTokens": 5, "completionTokens": 2, "totalTokens": 7}}})
    )
    result = client.run(RUN)
    assert (result.output, result.text, result.tool_calls) == ("Hello!", "Hello!", [])
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (5, 2, 7)
    assert isinstance(result.latency_ms, float) and result.latency_ms >= 0
    assert result.raw["data"]["output"] == "Hello!"
    assert fake.bodies() == [RUN]


def test_run_with_an_openai_object_and_tool_calls(make):
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    output = {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
    }
    client, _ = make(
        ok({"data": {"output": output, "usage": {"promptTokens": 9, "completionTokens": 4, "totalTokens": 13}}})
    )
    result = client.run(RUN)
    assert result.output == output
    assert (result.text, result.tool_calls) == ("", [call])


def test_run_joins_the_text_parts_of_list_content(make):
    content = [
        {"type": "text", "text": "Hello "},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "world"},
    ]
    output = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    client, _ = make(ok({"data": {"output": output, "usage": {}}}))
    assert client.run(RUN).text == "Hello world"


def test_run_with_another_kind_of_object_keeps_it_and_has_no_text(make):
    client, _ = make(
        ok({"data": {"output": {"answer": 42}, "usage": {"promptTokens": 1, "completionTokens": 1, "totalTokens": 2}}})
    )
    result = client.run(RUN)
    assert (result.output, result.text, result.tool_calls) == ({"answer": 42}, "", [])


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"promptTokens": 3, "completionTokens": 4}, (3, 4, 7)),  # total computed
        ({"promptTokens": None, "completionTokens": 4, "totalTokens": None}, (0, 4, 4)),
        ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, (3, 4, 7)),  # snake_case
        (None, (0, 0, 0)),
        ({}, (0, 0, 0)),
    ],
)
def test_run_tolerates_odd_usage(make, usage, expected):
    client, _ = make(ok({"data": {"output": "x", "usage": usage}}))
    result = client.run(RUN)
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == expected


def test_run_falls_back_to_the_usage_inside_an_openai_output(make):
    output = {
        "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }
    client, _ = make(ok({"data": {"output": output}}))
    assert client.run(RUN).total_tokens == 11


def test_deploy(make):
    answer = {
        "data": {
            "id": "dep_1",
            "promptId": "prm_1",
            "versionId": "ver_2",
            "status": "active",
            "createdAt": "t",
            "updatedAt": "t",
        }
    }
    client, fake = make(ok(answer))
    result = client.deploy(DEPLOY)
    assert (result.id, result.prompt_id, result.version_id, result.status) == ("dep_1", "prm_1", "ver_2", "active")
    assert fake.requests[0].url.path == "/v1/prompts/deploy"
    assert fake.bodies() == [DEPLOY_BODY]


# -- failures: HTTP statuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, said",
    [
        (fail(400, {"error": {"message": "messages must not be empty"}}), "messages must not be empty"),
        (fail(400, {"error": "modelName is required"}), "modelName is required"),
    ],
)
def test_400_quotes_maxims_own_message(make, answer, said):
    client, _ = make(answer)
    with pytest.raises(MaximError) as caught:
        client.run(RUN)
    assert caught.value.message == f"Maxim rejected the request: {said}"
    assert caught.value.status == 400 and not caught.value.retryable


@pytest.mark.parametrize(
    "answer",
    [
        fail(400, {"message": "root:x:0:0:root:/root:/bin/bash"}),
        fail(400, text="plain words from some other server"),
        fail(418, {"data": [{"id": "internal"}]}),
        fail(500, text="ssh-keyscan says hello"),
    ],
    ids=["other-json", "text", "json-418", "text-500"],
)
def test_a_body_not_in_maxims_error_shape_is_never_shown(make, answer):
    # Only {"error": {"message"}} or {"error": "..."} is Maxim's; anything else would make the
    # base URL a way to read another server's pages.
    client, _ = make(answer)
    with pytest.raises(MaximError) as caught:
        client.run(RUN)
    assert str(answer.status_code) in caught.value.message
    for secret in ("root:x", "plain words", "internal", "ssh-keyscan"):
        assert secret not in caught.value.message


def test_400_truncates_a_huge_message(make):
    client, _ = make(fail(400, {"error": {"message": "x" * 5000}}))
    with pytest.raises(MaximError) as caught:
        client.create_version(NEW_VERSION)
    assert len(caught.value.message) < 350
    assert caught.value.message.endswith("…")


def test_400_leaves_out_an_html_error_page(make):
    client, _ = make(fail(400, text="<html><body><h1>Bad Request</h1></body></html>"))
    with pytest.raises(MaximError, match=r"^Maxim rejected the request \(400\)\.$"):
        client.run(RUN)


@pytest.mark.parametrize(
    "status, call, expected",
    [
        (401, "list_workspaces", "Maxim rejected the API key; check the key saved for this workspace."),
        (
            403,
            "list_workspaces",
            "The API key has no access to this workspace list; check the key's permissions in Maxim.",
        ),
        (403, "list_prompts", "The API key has no access to this workspace; check the key's permissions in Maxim."),
        (404, "list_prompts", "Maxim could not find the workspace; it may have been deleted. Refresh and try again."),
        (404, "list_versions", "Maxim could not find the prompt; it may have been deleted. Refresh and try again."),
        (404, "run", "Maxim could not find the prompt version; it may have been deleted. Refresh and try again."),
        (404, "deploy", "Maxim could not find the prompt version; it may have been deleted. Refresh and try again."),
        (422, "run", "Maxim refused the request (422): nope"),
        (502, "run", "Maxim had a server error (502). Try again in a minute."),
        (301, "list_workspaces", f"Maxim answered with a redirect (301); check the base URL {BASE} (http or https?)."),
    ],
)
def test_each_status_has_a_message_a_person_can_act_on(make, status, call, expected):
    client, _ = make(fail(status, {"error": {"message": "nope"}}))
    args = {
        "list_workspaces": (),
        "list_prompts": ("ws_1",),
        "list_versions": ("prm_1",),
        "run": (RUN,),
        "deploy": (DEPLOY,),
    }[call]
    with pytest.raises(MaximError) as caught:
        getattr(client, call)(*args)
    assert caught.value.message == expected
    assert caught.value.status == status


def test_429_says_how_long_to_wait(make):
    client, _ = make(fail(429, {"error": {"message": "slow down"}}, **{"Retry-After": "120"}))
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == "Maxim is rate limiting requests (429). Wait 2 minutes and try again."
    assert caught.value.retryable and caught.value.retry_after == 120


@pytest.mark.parametrize(
    "header, wait", [("1e308", "more than a day"), ("999999999", "more than a day"), ("10800", "3 hours")]
)
def test_an_absurd_retry_after_reads_as_a_few_words(make, header, wait):
    client, _ = make(*[fail(429, **{"Retry-After": header})] * 4)
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == f"Maxim is rate limiting requests (429). Wait {wait} and try again."


def test_429_without_retry_after_still_says_to_wait(make):
    client, _ = make(*[fail(429)] * 4)
    with pytest.raises(MaximError, match=r"rate limiting requests \(429\)\. Wait a moment and try again\."):
        client.list_workspaces()


def test_408_on_a_run_is_reported_and_not_resent(make):
    client, fake = make(fail(408))
    with pytest.raises(MaximError, match=r"timed out waiting for the request \(408\)"):
        client.run(RUN)
    assert len(fake.requests) == 1


def test_retry_after_as_an_http_date_is_honoured(make, sleeps):
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    client, fake = make(fail(429, **{"Retry-After": when}), ok({"data": []}))
    assert client.list_workspaces() == []
    assert len(sleeps) == 1 and 7 <= sleeps[0] <= 10


# -- failures: transport and answers that cannot be read ----------------------------------------


def test_connect_timeout(make):
    client, _ = make(*[httpx.ConnectTimeout("timed out")] * 4)
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message.startswith("Could not connect to Maxim at maxim.example.test within")
    assert "check the base URL" in caught.value.message and caught.value.retryable


def test_read_timeout_on_a_list_says_to_try_again(make):
    client, _ = make(*[httpx.ReadTimeout("timed out")] * 4)
    with pytest.raises(MaximError, match=r"^Maxim did not answer within .*\. Try again in a minute\.$"):
        client.list_prompts("ws_1")


def test_read_timeout_on_a_run_warns_it_may_have_run_and_is_sent_once(make):
    client, fake = make(httpx.ReadTimeout("timed out"))
    with pytest.raises(MaximError) as caught:
        client.run(RUN)
    assert caught.value.message.startswith("Maxim did not answer within")
    assert "may still have been processed" in caught.value.message
    assert len(fake.requests) == 1


def test_the_timeout_in_the_message_is_the_one_in_force(sleeps):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.Client(transport=httpx.MockTransport(slow), timeout=httpx.Timeout(5.0, read=90.0))
    client = MaximClient(BASE, KEY, http=http, sleep=sleeps.append)
    with pytest.raises(MaximError, match="did not answer within 90 seconds"):
        client.run(RUN)


def test_refused_connection(make):
    client, _ = make(*[raising(httpx.ConnectError, ConnectionRefusedError(111, "Connection refused"))] * 4)
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == (
        "Maxim at maxim.example.test refused the connection; check the base URL and that the server is running."
    )


def test_a_really_refused_connection(sleeps):
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = MaximClient(f"http://127.0.0.1:{port}", KEY, http=httpx.Client(), sleep=sleeps.append)
    with pytest.raises(MaximError, match="refused the connection"):
        client.list_workspaces()
    assert sleeps == [0.5, 1.0, 2.0]  # a GET retries connection failures


def test_unknown_host(make):
    client, _ = make(*[raising(httpx.ConnectError, socket.gaierror(-2, "Name or service not known"))] * 4)
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == (
        "Could not find the Maxim host maxim.example.test (DNS lookup failed); check the base URL."
    )


def test_other_transport_errors(make):
    client, fake = make(raising(httpx.RemoteProtocolError))
    with pytest.raises(MaximError) as caught:
        client.run(RUN)
    assert caught.value.message == (
        "The connection to Maxim at maxim.example.test broke before an answer arrived. "
        "It may still have been processed; refresh before trying again."
    )
    assert len(fake.requests) == 1


def test_a_2xx_answer_that_is_not_json(make):
    client, _ = make(httpx.Response(200, text="<html>Maxim dashboard</html>"))
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == (
        f"Maxim answered with something that is not JSON it could read; check that {BASE} is the Maxim API."
    )


@pytest.mark.parametrize(
    "call, answer, expected",
    [
        ("list_prompts", {"items": []}, "Maxim's answer to GET /v1/prompts was not in the expected shape (no data)."),
        (
            "list_prompts",
            {"data": [{"name": "no id"}]},
            "Maxim's answer to GET /v1/prompts was not in the expected shape (items without an id).",
        ),
        (
            "list_versions",
            {"data": [{"id": "v", "version": "one"}]},
            "Maxim's answer to the version list was not in the expected shape (a version without a number).",
        ),
        (
            "create_prompt",
            {"data": {}},
            "Maxim's answer to creating the prompt was not in the expected shape "
            "(no id). It may still have been processed; refresh before trying again.",
        ),
        (
            "run",
            {"data": "done"},
            "Maxim's answer to the run was not in the expected shape (no output or usage). "
            "It may still have been processed; refresh before trying again.",
        ),
    ],
)
def test_json_without_the_expected_fields(make, call, answer, expected):
    client, _ = make(ok(answer))
    calls = {
        "list_prompts": lambda: client.list_prompts("ws_1"),
        "list_versions": lambda: client.list_versions("prm_1"),
        "create_prompt": lambda: client.create_prompt(NewPrompt(workspace_id="ws_1", name="x")),
        "run": lambda: client.run(RUN),
    }
    with pytest.raises(MaximError) as caught:
        calls[call]()
    assert caught.value.message == expected


# -- retries -----------------------------------------------------------------------------------


def test_a_get_is_retried_on_503_and_then_succeeds(make, sleeps):
    client, fake = make(fail(503), ok({"data": [{"id": "ws_1"}]}))
    assert [w.id for w in client.list_workspaces()] == ["ws_1"]
    assert len(fake.requests) == 2
    assert sleeps == [0.5]


def test_a_get_gives_up_after_max_retries(make, sleeps):
    client, fake = make(*[fail(503)] * 3, max_retries=2)
    with pytest.raises(MaximError, match=r"server error \(503\)"):
        client.list_workspaces()
    assert len(fake.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_get_is_retried_after_a_connection_failure(make, sleeps):
    client, fake = make(httpx.ConnectError("refused"), ok({"data": []}))
    assert client.list_workspaces() == []
    assert len(fake.requests) == 2


def test_retry_after_is_honoured(make, sleeps):
    client, fake = make(fail(429, **{"Retry-After": "7"}), ok({"data": []}))
    assert client.list_prompts("ws_1") == []
    assert sleeps == [7.0]


def test_retry_after_beyond_the_budget_fails_at_once(make, sleeps):
    client, fake = make(fail(429, **{"Retry-After": "45"}), max_retry_seconds=30.0)
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert caught.value.message == "Maxim is rate limiting requests (429). Wait 45 seconds and try again."
    assert sleeps == [] and len(fake.requests) == 1


def test_backoff_stops_when_the_time_budget_is_spent(make, sleeps):
    client, fake = make(fail(500), fail(500), max_retry_seconds=1.2)
    with pytest.raises(MaximError):
        client.list_workspaces()
    assert sleeps == [0.5]  # the next wait (1 s) would pass the 1.2 s budget
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [fail(500), fail(503), httpx.ReadTimeout("timed out"), httpx.ConnectError("refused")],
    ids=["500", "503", "timeout", "connect"],
)
def test_a_run_is_never_resent_after_an_error_that_may_have_reached_maxim(make, sleeps, failure):
    client, fake = make(failure)
    with pytest.raises(MaximError):
        client.run(RUN)
    assert len(fake.requests) == 1 and sleeps == []


@pytest.mark.parametrize("call", ["create_prompt", "create_version", "deploy"])
def test_other_posts_are_not_resent_after_a_5xx(make, call):
    client, fake = make(fail(500))
    with pytest.raises(MaximError):
        {
            "create_prompt": lambda: client.create_prompt(NewPrompt(workspace_id="ws_1", name="x")),
            "create_version": lambda: client.create_version(NEW_VERSION),
            "deploy": lambda: client.deploy(DEPLOY),
        }[call]()
    assert len(fake.requests) == 1


def test_a_run_refused_with_429_is_retried(make, sleeps):
    answer = {"data": {"output": "ok", "usage": {"promptTokens": 1, "completionTokens": 1, "totalTokens": 2}}}
    client, fake = make(fail(429, **{"Retry-After": "2"}), ok(answer))
    assert client.run(RUN).text == "ok"
    assert len(fake.requests) == 2 and sleeps == [2.0]
    assert fake.bodies() == [RUN, RUN]


# -- the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429, 500])
@pytest.mark.parametrize("shape", ["error.message", "error", "message", "text"])
def test_the_key_never_reaches_a_message_even_when_maxim_echoes_it(make, status, shape):
    echo = f"invalid key {KEY} for workspace"
    body = {"error.message": {"error": {"message": echo}}, "error": {"error": echo}, "message": {"message": echo}}.get(
        shape
    )
    client, _ = make(fail(status, body, text=echo if shape == "text" else None, **{"Retry-After": "999"}))
    with pytest.raises(MaximError) as caught:
        client.run(RUN)
    error = caught.value
    for text in (error.message, str(error), repr(error), *map(str, error.args)):
        assert KEY not in text


def test_the_key_is_never_logged(make, caplog):
    caplog.set_level(logging.DEBUG)
    client, _ = make(fail(500, {"error": {"message": KEY}}), ok({"data": []}))
    client.list_workspaces()
    assert caplog.records and KEY not in caplog.text


def test_the_key_is_not_in_the_clients_repr():
    assert KEY not in repr(MaximClient(BASE, KEY, http=httpx.Client()))


def test_client_for_shares_one_pool_per_base_url_and_keeps_keys_off_it():
    try:
        one = client_for(Credentials("https://API.maxim.example.test/", "key-one-123"))
        two = client_for(Credentials("https://api.maxim.example.test", "key-two-456"))
        other = client_for(Credentials("https://other.example.test", "key-one-123"))
        assert one._http is two._http and one._http is not other._http
        assert "x-maxim-api-key" not in one._http.headers
        assert one._http.timeout == httpx.Timeout(connect=5.0, read=90.0, write=30.0, pool=10.0)
        assert one.base_url == "https://api.maxim.example.test"
    finally:
        maxim.close_pools()


@pytest.mark.parametrize(
    "base_url, key, expected",
    [
        ("api.getmaxim.ai", KEY, "The Maxim base URL must look like https://api.getmaxim.ai."),
        ("ftp://api.getmaxim.ai", KEY, "The Maxim base URL must look like https://api.getmaxim.ai."),
        (BASE, "  ", "No Maxim API key is set; add one in the workspace settings."),
        (BASE, "sk-“pasted”", "The Maxim API key contains characters that cannot be sent; paste it again."),
    ],
)
def test_unusable_settings_fail_with_a_message(base_url, key, expected):
    with pytest.raises(MaximError) as caught:
        MaximClient(base_url, key, http=httpx.Client())
    assert caught.value.message == expected


# -- the contract the requests above are checked against (tests/maxim_spec.py) ----------------
# Where the spec files disagree or are silent, these pin down the reading we chose.

TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def check(method: str, path: str, body: dict | None, query: dict | None = None, **headers: str) -> None:
    validate_request(
        method, path, body, query, headers=headers or {"x-maxim-api-key": KEY, "content-type": "application/json"}
    )


def test_spec_a_run_may_send_null_content_for_a_tool_calling_assistant():
    # The yaml's content is anyOf [string, parts, {nullable: true}]; the last can only mean null.
    check(
        "POST",
        "/v1/prompts/run",
        {**RUN, "messages": [{"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}]},
    )
    with pytest.raises(AssertionError, match=r"body.messages\[0\].content"):
        check("POST", "/v1/prompts/run", {**RUN, "messages": [{"role": "user", "content": 5}]})


def test_spec_a_new_version_must_send_string_content_even_with_tool_calls():
    # The json spec requires a non-null content; the newer txt adds tool_calls but says nothing
    # about null, so a tool-calling assistant message must send "".
    body = {**NEW_VERSION_BODY, "messages": [{"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}]}
    with pytest.raises(AssertionError, match="None is not valid|is not of type"):
        check("POST", "/v1/prompts/versions", body)
    missing = {**NEW_VERSION_BODY, "messages": [{"role": "assistant", "tool_calls": [TOOL_CALL]}]}
    with pytest.raises(AssertionError, match="'content' is a required property"):
        check("POST", "/v1/prompts/versions", missing)


@pytest.mark.parametrize("provider", ["vertex", "mistral", "fireworks", "lmstudio"])
def test_spec_a_new_version_accepts_the_newer_providers(provider):
    # lmstudio is in the run yaml (16 providers) but not in the txt's list of 15; we allow it.
    check("POST", "/v1/prompts/versions", {**NEW_VERSION_BODY, "modelProvider": provider})


def test_spec_unknown_body_fields_are_reported():
    # Maxim would drop them silently: the run body has no `variables`.
    with pytest.raises(AssertionError, match="body.variables: not a field"):
        check("POST", "/v1/prompts/run", {**RUN, "variables": {"name": "Ada"}})


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_spec_workspaces_limit_is_1_to_100(limit):
    with pytest.raises(AssertionError, match="query.limit"):
        check("GET", "/v1/workspaces", None, {"limit": limit})


def test_spec_every_request_needs_the_key_header():
    with pytest.raises(AssertionError, match="x-maxim-api-key is missing"):
        check("GET", "/v1/workspaces", None, {"limit": "100"}, accept="application/json")


def test_a_retry_after_that_cannot_be_read_falls_back_to_backoff(make, sleeps):
    client, _ = make(fail(503, **{"Retry-After": "soon"}), ok({"data": []}))
    assert client.list_workspaces() == []
    assert sleeps == [0.5]


# -- hostile answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 101])
def test_an_answer_nested_thousands_deep_is_a_maxim_error_not_a_crash(make, depth):
    client, _ = make(lambda request: httpx.Response(200, text="[" * depth + "]" * depth))
    with pytest.raises(MaximError, match="not JSON it could read"):
        client.list_workspaces()


def test_an_error_answer_nested_thousands_deep_shows_only_its_status(make):
    client, _ = make(lambda request: httpx.Response(400, text='{"error": ' + "[" * 5_000 + "]" * 5_000 + "}"))
    with pytest.raises(MaximError) as caught:
        client.list_workspaces()
    assert "400" in str(caught.value) and "[[" not in str(caught.value)
