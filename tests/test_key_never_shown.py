"""A distinctive API key must never appear in a page, an admin page, an error page or a log record."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from prompts_app.models import Role, Workspace
from devtools.maxim_server import FakeMaxim

KEY = "mxk-Distinctive-Secret-7Qz9"
WRONG_KEY = "mxk-Wrong-But-Also-Secret-4Lw2"
SECRETS = (KEY, WRONG_KEY)


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr("prompts_app.maxim.client._backoff", lambda attempt: 0)


@pytest.fixture
def maxim():
    with FakeMaxim(api_key=KEY) as server:
        yield server
    assert not server.violations


@pytest.fixture
def connected(make_workspace, owner, viewer, maxim):
    return make_workspace(
        owner=owner, base_url=maxim.base_url, api_key=KEY, maxim_id="ws_default", members=[(viewer, Role.VIEWER)]
    )


def assert_no_key(body: bytes | str, where: str) -> None:
    text = body.decode() if isinstance(body, bytes) else body
    for secret in SECRETS:
        assert secret not in text, f"the key leaked into {where}"


def assert_no_key_in_logs(caplog) -> None:
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert_no_key(rendered, f"the log record {record.name}: {record.msg}")


def test_no_workspace_page_shows_the_key(client_for, owner, viewer, connected, maxim, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(owner)
    maxim.add_prompt("ws_default", "A prompt")
    pages = {
        "list": client.get("/"),
        "settings": client.get(reverse("workspace_settings", args=[connected.pk])),
        "delete confirm": client.get(reverse("workspace_delete", args=[connected.pk])),
        "test ok": client.post(reverse("workspace_test", args=[connected.pk]), headers={"HX-Request": "true"}),
    }
    assert "Maxim shows 1 prompt" in pages["test ok"].content.decode()
    # A server that echoes the key back in its error body.
    maxim.fail_next("/v1/prompts", 400, body={"error": {"message": f"key {KEY} is not allowed here"}})
    pages["test failed"] = client.post(reverse("workspace_test", args=[connected.pk]), headers={"HX-Request": "true"})
    assert "is not allowed here" in pages["test failed"].content.decode()
    pages["settings after failure"] = client.get(reverse("workspace_settings", args=[connected.pk]))
    # Replacing the key: the server echoes the OLD key, which the client (holding the new one) cannot know to redact.
    maxim.fail_next("/v1/prompts", 400, body={"error": {"message": f"key {KEY} is not allowed here"}})
    pages["replace key refused"] = client.post(
        reverse("workspace_replace_key", args=[connected.pk]), {"api_key": WRONG_KEY, "base_url": connected.base_url}
    )
    assert "The key was not saved" in pages["replace key refused"].content.decode()
    pages["viewer settings"] = client_for(viewer).get(reverse("workspace_settings", args=[connected.pk]))
    for where, response in pages.items():
        assert response.status_code == 200, where
        assert_no_key(response.content, where)
    assert_no_key_in_logs(caplog)


def test_the_connect_steps_never_show_the_key(client_for, outsider, maxim, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(outsider)
    pages = {"step 1": client.get(reverse("workspace_connect"))}
    pages["step 1 rejected"] = client.post(
        reverse("workspace_connect"), {"api_key": WRONG_KEY, "base_url": maxim.base_url}
    )
    assert "rejected this API key" in pages["step 1 rejected"].content.decode()
    pages["step 1 bad url"] = client.post(reverse("workspace_connect"), {"api_key": KEY, "base_url": "ftp://nope"})
    pages["step 1 ok (htmx)"] = client.post(
        reverse("workspace_connect"), {"api_key": KEY, "base_url": maxim.base_url}, headers={"HX-Request": "true"}
    )
    pages["step 2"] = client.get(reverse("workspace_connect_pick"))
    assert "Default workspace (ws_default)" in pages["step 2"].content.decode()
    pages["step 2 invalid"] = client.post(reverse("workspace_connect_pick"), {"maxim_id": "ws_nope"})
    done = client.post(reverse("workspace_connect_pick"), {"maxim_id": "ws_default"}, follow=True)
    pages["after connect"] = done
    assert "••••7Qz9" in done.content.decode()
    for where, response in pages.items():
        assert response.status_code == 200, where
        assert_no_key(response.content, where)
    assert_no_key_in_logs(caplog)
    assert Workspace.objects.get().get_api_key() == KEY


def test_the_admin_never_shows_the_key(client, make_user, connected, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    for page in [
        reverse("admin:prompts_app_workspace_changelist"),
        reverse("admin:prompts_app_workspace_change", args=[connected.pk]),
        reverse("admin:prompts_app_membership_changelist"),
    ]:
        response = client.get(page)
        assert response.status_code == 200
        assert_no_key(response.content, page)
        assert connected.api_key_encrypted not in response.content.decode()
    assert_no_key_in_logs(caplog)


def test_error_pages_never_show_the_key(client_for, owner, outsider, connected, caplog):
    caplog.set_level(logging.DEBUG)
    response = client_for(outsider).get(reverse("workspace_settings", args=[connected.pk]))
    assert response.status_code == 404 and "Page not found" in response.content.decode()
    assert_no_key(response.content, "the 404 page")
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(pk=owner.pk)
    response = server_error(request)
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()
    assert_no_key(response.content, "the 500 page")
    assert_no_key_in_logs(caplog)


def test_an_error_report_for_a_crash_while_connecting_holds_no_key(client_for, outsider, maxim, caplog, monkeypatch):
    """What the admins' error e-mail would contain (ExceptionReporter, as AdminEmailHandler uses it)."""
    from django.views.debug import ExceptionReporter

    client = client_for(outsider)
    client.raise_request_exception = False
    client.post(reverse("workspace_connect"), {"api_key": KEY, "base_url": maxim.base_url})

    def crash(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("prompts_app.services.workspaces.Membership.objects.create", crash)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(reverse("workspace_connect_pick"), {"maxim_id": "ws_default", "name": "x"})
    assert response.status_code == 500
    assert_no_key(response.content, "the 500 page")
    [record] = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    report = ExceptionReporter(record.request, *record.exc_info, is_email=True)
    text, html = report.get_traceback_text(), report.get_traceback_html()
    assert "database went away" in text and "connect_workspace" in text
    assert_no_key(text, "the error report (text)")
    assert_no_key(html, "the error report (html)")


def test_an_error_report_for_a_crash_in_step_one_hides_the_posted_key(client_for, outsider, maxim, caplog, monkeypatch):
    from django.views.debug import ExceptionReporter

    def crash(*args, **kwargs):
        raise RuntimeError("session store down")

    monkeypatch.setattr("prompts_app.services.workspaces.stash_pending", crash)
    client = client_for(outsider)
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(reverse("workspace_connect"), {"api_key": KEY, "base_url": maxim.base_url})
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    report = ExceptionReporter(record.request, *record.exc_info, is_email=True)
    assert "session store down" in report.get_traceback_text()
    assert_no_key(report.get_traceback_text(), "the error report (text)")
    assert_no_key(report.get_traceback_html(), "the error report (html)")


def test_a_server_that_echoes_the_key_in_an_answer_never_gets_it_stored_or_shown(client_for, editor, version):
    """The confirmed origin may echo what it was sent (a debugging proxy, a model told to repeat its
    headers): the output is stored and shown, so the key is redacted out of it first."""
    from prompts_app.models import Run
    from tests.conftest import API_KEY, RUN_URL, run_answer, run_form_data, run_url
    import httpx
    import respx

    answer = run_answer(f"Your header was x-maxim-api-key: {API_KEY}")
    answer["data"]["output"]["debug"] = {API_KEY: [f"key={API_KEY}"]}
    with respx.mock(assert_all_called=True) as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(200, json=answer))
        page = client_for(editor).post(run_url(version), run_form_data())
    run = Run.objects.get()
    assert run.status == Run.Status.SUCCESS
    assert "[redacted]" in run.output_text
    assert API_KEY not in json.dumps([run.output, run.output_text, run.tool_calls])
    assert API_KEY not in page.content.decode()
    assert API_KEY not in client_for(editor).get(reverse("run_detail", args=[run.pk])).content.decode()


def test_a_key_split_across_content_parts_is_redacted_once_joined_and_the_parts_are_not_kept(
    client_for, editor, version
):
    # Hostile trial: each part was redacted alone, then the parts were joined into the output
    # text, which showed the whole key on the run page and in the exports.
    from prompts_app.models import Run
    from tests.conftest import API_KEY, RUN_URL, run_form_data, run_url
    import httpx
    import respx

    half = len(API_KEY) // 2
    parts = [{"type": "text", "text": f"key: {API_KEY[:half]}"}, {"type": "text", "text": API_KEY[half:]}]
    output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": parts}}]}
    answer = {"data": {"output": output, "usage": {"promptTokens": 3, "completionTokens": 2, "totalTokens": 5}}}
    with respx.mock(assert_all_called=True) as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(200, json=answer))
        page = client_for(editor).post(run_url(version), run_form_data())
    run = Run.objects.get()
    assert run.status == Run.Status.SUCCESS and run.output_text == "key: [redacted]"
    stored = json.dumps([run.output, run.output_text, run.tool_calls])
    assert API_KEY[:half] not in stored and API_KEY[half:] not in stored
    assert API_KEY not in page.content.decode()
    assert API_KEY[half:] not in client_for(editor).get(reverse("run_detail", args=[run.pk])).content.decode()
    export = client_for(editor).get(reverse("run_export_csv"))
    assert API_KEY not in b"".join(export.streaming_content).decode()
