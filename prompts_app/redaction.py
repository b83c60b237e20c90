"""How an API key may appear in text: masked to its last four characters, or not at all."""

from __future__ import annotations

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
