from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from prompts_app import crypto
from prompts_app.models import Workspace

RAW_KEY = "sk-maxim-SECRET-raw-key-9f3a"


def _dump_database() -> str:
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            rows += [repr(row) for row in cursor.fetchall()]
    return "\n".join(rows)


def test_the_key_is_stored_only_as_ciphertext(make_workspace, owner):
    workspace = make_workspace(owner=owner, api_key=RAW_KEY)
    assert RAW_KEY not in _dump_database()
    assert Workspace.objects.get(pk=workspace.pk).get_api_key() == RAW_KEY
    assert workspace.masked_key == "••••9f3a"


def test_the_key_survives_rotation(make_workspace, owner, settings):
    workspace = make_workspace(owner=owner, api_key=RAW_KEY)
    old_token = Workspace.objects.get(pk=workspace.pk).api_key_encrypted
    new_key = Fernet.generate_key().decode()
    settings.MAXIMUI_ENCRYPTION_KEYS = [new_key, *settings.MAXIMUI_ENCRYPTION_KEYS]

    call_command("rotate_api_keys")

    rotated = Workspace.objects.get(pk=workspace.pk)
    assert rotated.api_key_encrypted != old_token
    settings.MAXIMUI_ENCRYPTION_KEYS = [new_key]  # the old key is gone: the new one alone decrypts
    assert rotated.get_api_key() == RAW_KEY


def test_a_key_encrypted_with_an_unknown_key_gives_a_clear_error(settings):
    token = crypto.encrypt("abc")
    settings.MAXIMUI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="cannot be decrypted"):
        crypto.decrypt(token)
