"""How an API key may appear in text: masked to its last four characters, or not at all."""

from __future__ import annotations

from typing import Any

from django.views.decorators.debug import sensitive_variables

MASK = "••••"


def masked(key_or_tail: str) -> str:
    """`••••` and the last four characters: enough to tell keys apart, too little to use one."""
    return MASK + key_or_tail[-4:]


@sensitive_variables()
def redact(text: str, *secrets: str) -> str:
    """`text` with every secret replaced; shorter than 4 characters they would hit ordinary words."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


@sensitive_variables()
def redact_all(value: Any, *secrets: str) -> Any:
    """`value` (parsed JSON) with every secret replaced in every string, keys included: a server
    that echoes what it was sent (a debugging proxy, a model asked to repeat its headers) must
    not put the key into an output we store and show."""
    return _redacted(value, tuple(secret for secret in secrets if len(secret) >= 4))


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    # Not decorated itself: sensitive_variables' wrapper on every node of a run's answer was half
    # of the time redaction took in a batch worker's threads.
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    if isinstance(value, dict):
        return {_redacted(key, secrets): _redacted(item, secrets) for key, item in value.items()}
    return value
