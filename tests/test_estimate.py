"""The estimate shown before running: approximate input tokens and their cost."""

from __future__ import annotations

from decimal import Decimal

import respx
from django.urls import reverse

from prompts_app import pricing
from prompts_app.forms.runs import MAX_INPUT_CHARS
from prompts_app.maxim import ModelChoice
from prompts_app.models import CustomPrice, PromptVersion, Run
from tests.conftest import run_form_data


def estimate(client, version, **extra) -> str:
    response = client.post(
        reverse("version_estimate", args=[version.pk]), run_form_data(**extra), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    return response.content.decode()


@respx.mock  # any request to Maxim would fail the test: an estimate never calls it
def test_it_counts_the_filled_in_messages_and_prices_them(client_for, editor, version):
    html = estimate(client_for(editor), version)
    messages = [
        {"role": "system", "content": "You are a helpful support agent for Acme."},
        {"role": "user", "content": "Hello, I am Ann."},
        {"role": "user", "content": "Where is my order?"},
    ]
    tokens = pricing.estimate_input_tokens(messages, None, model="gpt-4o")
    cost = pricing.estimate_cost(provider="openai", model="gpt-4o", prompt_tokens=tokens)
    assert f"≈ {tokens} input tokens" in html
    assert f"≈ {pricing.format_usd(cost.cost_nano)} for the input" in html
    assert "approximate" in html
    assert Run.objects.count() == 0


@respx.mock
def test_tools_count_towards_the_estimate(client_for, editor, prompt):
    plain = PromptVersion.objects.create(prompt=prompt, maxim_id="a", model_name="gpt-4o", messages=[])
    with_tools = PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="b",
        model_name="gpt-4o",
        messages=[],
        tools=[
            {
                "name": "lookup_order",
                "description": "Find an order by its id in the shop database",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            }
        ],
    )
    client = client_for(editor)
    expected = pricing.estimate_input_tokens(
        [{"role": "user", "content": "Where is my order?"}],
        ModelChoice.of(with_tools.content()).api_parameters()["tools"],
        model="gpt-4o",
    )
    assert f"≈ {expected} input tokens" in estimate(client, with_tools)
    assert f"≈ {expected} input tokens" not in estimate(client, plain)


@respx.mock
def test_a_half_typed_form_still_gets_an_estimate(client_for, editor, version):
    html = estimate(
        client_for(editor),
        version,
        var__name="",
        temperature="hot",
        extra_parameters="{oops",
        **{"turn-TOTAL_FORMS": "x"},
    )
    assert "input tokens" in html and "approximate" in html


@respx.mock
def test_an_overridden_model_is_estimated_with_its_custom_price(client_for, editor, version):
    CustomPrice.objects.create(
        workspace=version.prompt.workspace,
        model_pattern="my-model",
        input_usd_per_mtok=Decimal("1000"),
        output_usd_per_mtok=Decimal("0"),
    )
    html = estimate(client_for(editor), version, model_name="my-model")
    assert "for the input" in html and "unpriced" not in html


@respx.mock
def test_an_unknown_model_is_estimated_as_unpriced(client_for, editor, version):
    html = estimate(client_for(editor), version, model_name="no-such-model-9000")
    assert "cost unpriced" in html and "$0" not in html


@respx.mock
def test_oversized_input_is_not_estimated(client_for, editor, version):
    html = estimate(client_for(editor), version, **{"turn-0-content": "x" * (MAX_INPUT_CHARS + 1)})
    assert "Turn 1 is 100,001 characters long; the limit is 100,000 characters." in html
    assert "input tokens" not in html


def test_a_viewer_may_estimate_but_an_outsider_gets_404(client_for, viewer, outsider, version):
    assert "input tokens" in estimate(client_for(viewer), version)
    url = reverse("version_estimate", args=[version.pk])
    assert client_for(outsider).post(url, run_form_data()).status_code == 404
