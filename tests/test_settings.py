"""Settings read from the environment fail loudly on bad or missing values.

Each case imports maximui.settings in a fresh interpreter with a clean environment and
MAXIMUI_ENV_FILE="" so a developer's .env.local cannot change the outcome.
"""

from __future__ import annotations


import pytest
from tests.conftest import SECRETS, load_settings


def test_production_settings_load_with_both_secrets_set():
    result = load_settings({**SECRETS}, "import maximui.settings as s; print(s.DEBUG, len(s.MAXIMUI_ENCRYPTION_KEYS))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "1"]


def test_without_debug_a_missing_secret_key_stops_start_up():
    result = load_settings({"MAXIMUI_ENCRYPTION_KEYS": SECRETS["MAXIMUI_ENCRYPTION_KEYS"]})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_without_debug_missing_encryption_keys_stop_start_up():
    result = load_settings({"SECRET_KEY": SECRETS["SECRET_KEY"]})
    assert result.returncode != 0
    assert "MAXIMUI_ENCRYPTION_KEYS is not set" in result.stderr


def test_debug_on_uses_development_secrets():
    result = load_settings({"DEBUG": "1"}, "import maximui.settings as s; print(bool(s.SECRET_KEY), s.DEBUG)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("name", ["DEBUG", "SECURE_COOKIES"])
def test_a_bad_boolean_names_the_variable(name):
    result = load_settings({**SECRETS, name: "maybe"})
    assert result.returncode != 0
    assert f"{name}='maybe' is not a boolean" in result.stderr


def test_the_held_request_bound_comes_from_the_environment_and_is_checked():
    code = "import maximui.settings as s; print(s.MAXIMUI_HELD_REQUESTS)"
    assert load_settings({**SECRETS}, code).stdout.split() == ["4"]
    assert load_settings({**SECRETS, "MAXIMUI_HELD_REQUESTS": "6"}, code).stdout.split() == ["6"]
    for bad, message in (("many", "is not a whole number"), ("0", "must be at least 1")):
        result = load_settings({**SECRETS, "MAXIMUI_HELD_REQUESTS": bad})
        assert result.returncode != 0 and f"MAXIMUI_HELD_REQUESTS={bad!r} {message}" in result.stderr


def test_a_postgres_database_url_selects_the_postgresql_engine():
    code = (
        "import maximui.settings as s; d = s.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST'], d['PORT'])"
    )
    result = load_settings({**SECRETS, "DATABASE_URL": "postgres://app:pw@db.internal:5433/maximui"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "maximui", "db.internal", "5433"]


def test_without_database_url_sqlite_lives_in_the_var_dir(tmp_path):
    code = "import maximui.settings as s; print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'])"
    result = load_settings({**SECRETS, "MAXIMUI_VAR_DIR": str(tmp_path)}, code)
    assert result.stdout.split() == ["django.db.backends.sqlite3", str(tmp_path / "db.sqlite3")]


def test_an_env_file_supplies_values_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text(
        f"# local\nSECRET_KEY={'f' * 50}\nMAXIMUI_ENCRYPTION_KEYS={SECRETS['MAXIMUI_ENCRYPTION_KEYS']}\nTIME_ZONE=Europe/Paris\n"
    )
    code = "import maximui.settings as s; print(s.SECRET_KEY[:3], s.TIME_ZONE)"
    result = load_settings({"MAXIMUI_ENV_FILE": str(env_file), "TIME_ZONE": "Asia/Tokyo"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fff", "Asia/Tokyo"]


def test_a_missing_env_file_named_explicitly_is_an_error(tmp_path):
    result = load_settings({**SECRETS, "MAXIMUI_ENV_FILE": str(tmp_path / "nope.env")})
    assert result.returncode != 0 and "is not a file" in result.stderr


def test_a_malformed_env_file_line_is_reported_with_its_number(tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text("DEBUG=1\njust words\n")
    result = load_settings({"MAXIMUI_ENV_FILE": str(env_file)})
    assert result.returncode != 0 and "bad.env line 2: expected NAME=value" in result.stderr


def test_a_fresh_checkout_without_a_var_dir_can_migrate_its_sqlite_database(tmp_path):
    var_dir = tmp_path / "var"  # git-ignored, so a fresh clone has none
    code = "import django; django.setup(); from django.core.management import call_command; call_command('migrate', verbosity=0)"
    result = load_settings(
        {**SECRETS, "MAXIMUI_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "maximui.settings"}, code
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (var_dir / "db.sqlite3").exists()
