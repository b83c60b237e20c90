"""Encrypt and decrypt stored Maxim API keys, nothing else.

`MAXIMUI_ENCRYPTION_KEYS` holds Fernet keys: the first encrypts, every one
decrypts, so a new key can be put first and old ciphertexts re-encrypted with
`manage.py rotate_api_keys` before the old key is dropped.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from prompts_app.maxim import MaximError

UNDECRYPTABLE = (
    "The stored API key cannot be decrypted with this server's MAXIMUI_ENCRYPTION_KEYS. "
    "Save the workspace's API key again."
)


class DecryptionError(MaximError):
    """The stored key cannot be decrypted with any configured encryption key.

    A MaximError, so every caller that reports a failed Maxim call (sync, import, create,
    deploy, run, test) shows this message instead of answering 500.
    """

    def __init__(self, message: str = UNDECRYPTABLE) -> None:
        super().__init__(message)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "MAXIMUI_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64-encoded bytes each)"
        ) from exc


def _current() -> MultiFernet:
    return _fernet(tuple(settings.MAXIMUI_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, ttl: int | None = None) -> str:
    """The plaintext; with `ttl`, only if the token was made at most `ttl` seconds ago."""
    try:
        return _current().decrypt((token or "").encode(), ttl=ttl).decode()
    except InvalidToken:
        raise DecryptionError() from None


def rotate(token: str) -> str:
    """Re-encrypt `token` with the first key."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("A stored API key cannot be decrypted with any configured key") from exc
