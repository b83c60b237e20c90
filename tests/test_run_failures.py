"""Every way a run can fail: a clear message in the page, the run recorded as failed, and
the run request sent exactly once (a run costs money, so nothing is re-sent by itself)."""

from __future__ import annotations

import socket

import httpx
import pytest
import respx
from django.urls import reverse

from prompts_app import maxim
from prompts_app.models import Run
from tests.conftest import run_form_data

RUN_URL = "https://maxim.test/v1/prompts/run"


def post_run(client, version, **extra):
    return client.post(
        reverse("version_run", args=[version.pk]), run_form_data(**extra), headers={"HX-Request": "true"}
    )


@pytest.mark.parametrize(
    ("reply", "message", "status"),
    [
        (
            httpx.Response(400, json={"error": {"message": "modelName is not supported"}}),
            "Maxim rejected the request: modelName is not supported",
            400,
        ),
        (httpx.Response(401, json={"error": {"message": "Invalid API key"}}), "Maxim rejected the API key", 401),
        (httpx.Response(403, json={"error": "forbidden"}), "The API key has no access to this prompt version", 403),
        (httpx.Response(404, json={"error": {"message": "not found"}}), "Maxim could not find the prompt version", 404),
        (
            httpx.Response(429, headers={"Retry-After": "20"}, json={"error": {"message": "slow down"}}),
            "Maxim is rate limiting requests (429). Wait 20 seconds",
            429,
        ),
        (httpx.Response(500, text="boom"), "Maxim had a server error (500)", 500),
        (httpx.Response(503, text="<html>Service Unavailable</html>"), "Maxim had a server error (503)", 503),
        (httpx.Response(200, text="<html>login page</html>"), "not JSON", 200),
        (httpx.Response(200, json={"data": {"nothing": True}}), "not in the expected shape", None),
        (httpx.ReadTimeout("read timed out"), "Maxim did not answer within", None),
        (httpx.ConnectTimeout("connect timed out"), "Could not connect to Maxim at maxim.test", None),
        (httpx.RemoteProtocolError("peer closed"), "The connection to Maxim at maxim.test broke", None),
        (httpx.Response(200, text='{"data": ' + "[" * 5000 + "]" * 5000 + "}"), "not JSON", 200),
    ],
    ids=[
        "400",
        "401",
        "403",
        "404",
        "429",
        "500",
        "503-html",
        "non-json",
        "wrong-shape",
        "read-timeout",
        "connect-timeout",
        "dropped",
        "nested-5000-deep",
    ],
)
def test_a_failed_run_is_recorded_with_its_reason_and_sent_once(client_for, editor, version, reply, message, status):
    with respx.mock() as mock:
        route = mock.post(RUN_URL)
        route.side_effect = [reply] if isinstance(reply, Exception) else None
        if not isinstance(reply, Exception):
            route.return_value = reply
        response = post_run(client_for(editor), version)
        assert route.call_count == 1
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'")
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert message in run.error
    assert run.error_status == status
    assert run.cost_nano is None and run.finished_at is not None
    assert "test-key-1234" not in html + run.error


def test_the_failure_shows_on_the_run_page_too(client_for, editor, version):
    with respx.mock() as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(500, text="boom"))
        response = client_for(editor).post(reverse("version_run", args=[version.pk]), run_form_data())
    html = client_for(editor).get(response["Location"]).content.decode()
    assert "Maxim had a server error (500)" in html and "HTTP 500" in html
    assert "no cost recorded" in html


def test_a_refused_connection_fails_the_run(client_for, editor, version):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workspace = version.prompt.workspace
    workspace.base_url = f"http://127.0.0.1:{port}"
    workspace.save()
    html = post_run(client_for(editor), version).content.decode()
    assert "refused the connection" in html
    assert Run.objects.get().status == Run.Status.FAILED


@pytest.fixture
def seeded(fake_maxim, version):
    """The version as the fake Maxim server knows it, with the workspace pointed at the server."""
    maxim_prompt = fake_maxim.add_prompt("ws_default", "Support reply")
    maxim_version = fake_maxim.add_version(
        {
            "promptId": maxim_prompt["id"],
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "messages": version.messages,
            "modelParameters": version.model_parameters,
        }
    )
    prompt = version.prompt
    prompt.maxim_id = maxim_prompt["id"]
    prompt.save()
    version.maxim_id = maxim_version["id"]
    version.save()
    workspace = prompt.workspace
    workspace.base_url, workspace.maxim_id = fake_maxim.base_url, "ws_default"
    workspace.save()
    return fake_maxim


@pytest.mark.parametrize(
    ("model", "message"),
    [("fail-401", "Maxim rejected the API key"), ("fail-429", "rate limiting"), ("fail-500", "server error (500)")],
)
def test_failures_from_a_real_server_are_sent_once(client_for, editor, version, seeded, model, message):
    html = post_run(client_for(editor), version, model_name=model).content.decode()
    assert message in html
    assert len(seeded.requests_to("/v1/prompts/run")) == 1
    assert Run.objects.get().status == Run.Status.FAILED


def test_a_hanging_server_times_out_and_is_not_resent(client_for, editor, version, seeded, monkeypatch):
    monkeypatch.setattr(maxim.client, "TIMEOUT", httpx.Timeout(connect=2.0, read=0.5, write=2.0, pool=2.0))
    maxim.close_pools()  # the pool for this base URL must be built with the short timeout
    seeded.hang_seconds = 3
    try:
        html = post_run(client_for(editor), version, model_name="hang").content.decode()
    finally:
        maxim.close_pools()
    assert "Maxim did not answer within 1 second" in html
    assert "It may still have been processed" in html
    assert len(seeded.requests_to("/v1/prompts/run")) == 1
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED and run.latency_ms >= 500


def test_a_successful_run_against_the_real_server_passes_the_spec(client_for, editor, version, seeded):
    html = post_run(client_for(editor), version).content.decode()
    assert "Echo: Where is my order?" in html
    [request] = seeded.requests_to("/v1/prompts/run")
    assert request.body == Run.objects.get().request_body


def test_a_key_that_cannot_be_decrypted_fails_the_run_without_sending(client_for, editor, version):
    workspace = version.prompt.workspace
    workspace.api_key_encrypted = "not-a-fernet-token"
    workspace.save()
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(RUN_URL)
        html = post_run(client_for(editor), version).content.decode()
        assert route.call_count == 0
    assert "Save the workspace&#x27;s API key again." in html
    assert Run.objects.get().status == Run.Status.FAILED


def test_an_answer_with_nul_characters_is_stored_on_every_database(client_for, editor, version):
    # PostgreSQL's text and jsonb cannot hold NUL: the run must not stay pending after a 500.
    answer = {"data": {"output": "a\u0000b", "usage": {"promptTokens": 3, "completionTokens": 2, "totalTokens": 5}}}
    with respx.mock() as mock:
        route = mock.post(RUN_URL).respond(200, json=answer)
        response = post_run(client_for(editor), version)
    assert response.status_code == 200 and route.call_count == 1
    run = Run.objects.get()
    assert (run.status, run.output_text) == (Run.Status.SUCCESS, "a\ufffdb")


def test_a_fault_after_maxim_answered_fails_the_run_instead_of_leaving_it_pending(
    client_for, editor, version, monkeypatch
):
    from prompts_app.services import runs

    def broken_pricing(run, *_):
        raise ZeroDivisionError("a pricing bug")

    monkeypatch.setattr(runs, "_apply_price", broken_pricing)
    with respx.mock() as mock:
        route = mock.post(RUN_URL).respond(200, json={"data": {"output": "hi", "usage": {}}})
        response = post_run(client_for(editor), version)
    assert response.status_code == 200 and route.call_count == 1
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED and run.finished_at is not None
    assert "Maxim processed the run" in run.error
