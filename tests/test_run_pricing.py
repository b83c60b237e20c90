"""A run's cost: genai-prices for known models, the workspace's custom prices first, and
"unpriced" (never $0) when no price is known."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx
from django.urls import reverse

from prompts_app import pricing
from prompts_app.models import CustomPrice, Run
from prompts_app.services.runs import run_version

RUN_URL = "https://maxim.test/v1/prompts/run"
INPUTS = {"turns": [{"role": "user", "content": "hi"}], "variables": {"company": "Acme", "name": "Ann"}}


@pytest.fixture
def maxim():
    usage = {"promptTokens": 1000, "completionTokens": 500, "totalTokens": 1500}
    with respx.mock() as mock:
        mock.post(RUN_URL).mock(return_value=httpx.Response(200, json={"data": {"output": "ok", "usage": usage}}))
        yield mock


def run_with(version, user, **overrides) -> Run:
    return run_version(version=version, inputs={**INPUTS, "overrides": overrides}, user=user)


def page_of(client, run) -> str:
    return client.get(reverse("run_detail", args=[run.pk])).content.decode()


def test_a_known_model_is_priced_from_genai_prices(client_for, editor, version, maxim):
    run = run_with(version, editor)
    expected = pricing.price_tokens(
        provider="openai", model="gpt-4o", prompt_tokens=1000, completion_tokens=500, at=run.created_at
    )
    assert run.cost_nano == expected.cost_nano > 0
    # gpt-4o: $2.50 in and $10 out per 1M tokens -> $0.0025 + $0.005
    assert run.cost_nano == 7_500_000
    assert run.input_usd_per_mtok == Decimal("2.5") and run.output_usd_per_mtok == Decimal("10")
    assert run.price_source.startswith("genai-prices") and run.price_as_of == run.created_at.date()
    html = page_of(client_for(editor), run)
    assert "$0.0075" in html and "$2.50 in / $10.00 out per 1M tokens" in html
    assert f"as of {run.created_at:%Y-%m-%d}" in html


def test_a_custom_price_wins_over_the_library(client_for, editor, version, maxim):
    CustomPrice.objects.create(
        workspace=version.prompt.workspace,
        model_pattern="gpt-4o*",
        input_usd_per_mtok=Decimal("1"),
        output_usd_per_mtok=Decimal("2"),
    )
    run = run_with(version, editor)
    assert run.cost_nano == 1000 * 1000 + 500 * 2000  # nano-USD: $1/1M = 1,000 nano per token
    assert run.price_source.startswith("custom: gpt-4o*")
    assert "custom: gpt-4o*" in page_of(client_for(editor), run)


def test_a_local_model_with_a_zero_price_costs_zero_not_unpriced(client_for, editor, version, maxim):
    CustomPrice.objects.create(
        workspace=version.prompt.workspace,
        model_pattern="ollama/*",
        input_usd_per_mtok=Decimal("0"),
        output_usd_per_mtok=Decimal("0"),
    )
    run = run_with(version, editor, provider="ollama", model_name="llama3.1")
    assert run.cost_nano == 0 and run.is_priced
    html = page_of(client_for(editor), run)
    assert "$0.00" in html and "unpriced" not in html


def test_a_local_model_without_a_custom_price_is_unpriced_with_the_fix(client_for, editor, version, maxim):
    run = run_with(version, editor, provider="ollama", model_name="llama3.1")
    assert run.cost_nano is None
    html = page_of(client_for(editor), run)
    assert "unpriced" in html and "add a $0 custom price" in html


def test_an_unknown_model_is_unpriced_never_zero(client_for, editor, version, maxim):
    run = run_with(version, editor, model_name="no-such-model-9000")
    run.refresh_from_db()
    assert run.cost_nano is None and run.input_usd_per_mtok is None
    assert run.price_source == "unpriced: no price known for openai/no-such-model-9000"
    html = page_of(client_for(editor), run)
    assert "unpriced" in html and "no price known for openai/no-such-model-9000" in html
    assert "$0.00" not in html


def test_the_per_token_shortcut_prices_every_bundled_model_as_genai_prices_does():
    """pricing._genai_price skips genai-prices' unit registry for plain per-token prices (the
    batch worker's hot path); it must agree with calc_price to the last digit, tiers included."""
    import datetime as dt

    import genai_prices
    from genai_prices.data_snapshot import get_snapshot

    at = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    checked = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            for prompt_tokens, completion_tokens in ((1_234, 567), (300_001, 1_000)):
                usage = genai_prices.Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
                try:
                    expected = genai_prices.calc_price(
                        usage, model.id, provider_id=provider.id, genai_request_timestamp=at
                    )
                except (LookupError, ValueError):
                    continue
                total, model_price, _ = pricing._genai_price(
                    provider.id, model.id, prompt_tokens, completion_tokens, at
                )
                assert (total, model_price) == (expected.total_price, expected.model_price), (provider.id, model.id)
                checked += 1
    assert checked > 1000
