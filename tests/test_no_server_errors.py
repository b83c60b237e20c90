"""Every URL, with good ids, missing ids and junk input, answers without a server error."""

from __future__ import annotations

import itertools

import httpx
import pytest
import respx
from django.urls import URLPattern, get_resolver

from prompts_app.models import Comparison, ComparisonColumn, Run

JUNK = {
    "a": "x",
    "b": "../../etc",
    "from": "abc",
    "q": "\x00' OR 1=1 --",
    "workspace": "-1",
    "prompt": "zz",
    "version": "9" * 30,
    "status": "nope",
    "date_from": "2026-13-45",
    "date_to": "yesterday",
    "before": "%%%",
    "after": "{}",
    "period": "-5",
    "baseline": "x",
    "batch": "-1",
    "run": "x",
    "provider": "<script>",
    "action": "remove_message:99999999999999999999",
    "columns": ["v-1", "d0", ""],
    "repeats": "1e9",
    "api_key": " ",
    "base_url": "javascript:alert(1)",
    "name": "",
    "role": "god",
    "model_pattern": "[",
    "input_usd_per_mtok": "-1",
    "output_usd_per_mtok": "NaN",
    "username": "\u202e",
    "idempotency_key": "k" * 500,
    "turn-TOTAL_FORMS": "100000",
    "turn-INITIAL_FORMS": "x",
    "c-TOTAL_FORMS": "-3",
    "messages-TOTAL_FORMS": "abc",
}


# Logging out or deleting the workspace would turn every later request into a redirect or a 404.
LAST = ("workspace_delete",)
SKIP = ("logout",)


def _patterns():
    found = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern):
            if pattern.name and pattern.name not in SKIP:
                found.append(pattern)
            continue
        if getattr(pattern, "app_name", None) == "admin":
            continue
        found += [sub for sub in pattern.url_patterns if isinstance(sub, URLPattern) and sub.name]
    return sorted(found, key=lambda p: p.name in LAST)


@pytest.fixture
def world(workspace, prompt, version, owner):
    run = Run.objects.create(
        workspace=workspace,
        prompt=prompt,
        version=version,
        user=owner,
        provider="openai",
        model_name="gpt-4o",
        status="success",
    )
    comparison = Comparison.objects.create(workspace=workspace, created_by=owner)
    column = ComparisonColumn.objects.create(comparison=comparison, position=0, version=version)
    return {
        "workspace_id": workspace.pk,
        "prompt_id": prompt.pk,
        "version_id": version.pk,
        "run_id": run.pk,
        "comparison_id": comparison.pk,
        "column_id": column.pk,
        "membership_id": 1,
        "price_id": 1,
        "fmt": "csv",
    }


def _url(pattern: URLPattern, ids: dict, missing: bool) -> str:
    route = str(pattern.pattern)
    kwargs = {}
    for name in pattern.pattern.converters:
        kwargs[name] = 987654 if missing and name.endswith("_id") else ids.get(name, 1)
    for name, value in kwargs.items():
        route = route.replace(f"<int:{name}>", str(value)).replace(f"<str:{name}>", str(value))
        route = route.replace(f"<{name}>", str(value))
    return "/" + route.lstrip("^").rstrip("$")


@pytest.mark.parametrize("missing", [False, True])
def test_no_url_answers_a_server_error_to_junk(client_for, owner, world, missing, caplog):
    client = client_for(owner)
    client.raise_request_exception = False
    failures, served = [], 0
    mock = respx.mock(assert_all_called=False)
    mock.route().mock(return_value=httpx.Response(400, json={"error": {"message": "no"}}))  # never the network
    with mock:
        for pattern, htmx in itertools.product(_patterns(), (False, True)):
            url = _url(pattern, world, missing)
            headers = {"HX-Request": "true"} if htmx else {}
            for method, data in itertools.product(("get", "post"), ({}, JUNK)):
                response = getattr(client, method)(url, data, headers=headers)
                served += response.status_code < 300 or response.status_code == 405
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {url} {'htmx ' if htmx else ''}-> {response.status_code}")
    assert not failures, "\n".join(failures)
    assert served > 50  # still logged in, and most requests reached their view
