"""`manage.py ensure_admin`: creates a superuser once, prints how to log in, is idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def ensure_admin(*args: str) -> str:
    out = StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def test_it_creates_an_admin_whose_printed_password_works(db, var_dir, client):
    output = ensure_admin("--url", "http://127.0.0.1:9000/")
    user = get_user_model().objects.get()
    assert user.username == "admin" and user.is_superuser and user.is_staff
    password = (var_dir / "initial-admin-password.txt").read_text().strip()
    assert oct((var_dir / "initial-admin-password.txt").stat().st_mode & 0o777) == "0o600"
    assert "Created the superuser 'admin'" in output and "http://127.0.0.1:9000/" in output
    assert password in output
    response = client.post("/login/", {"username": "admin", "password": password})
    assert response.status_code == 302 and client.session.get("_auth_user_id")  # axes needs a real request


def test_running_it_again_creates_no_second_admin_and_keeps_the_password(db, var_dir):
    ensure_admin()
    first = get_user_model().objects.get()
    password_hash = first.password
    output = ensure_admin()
    assert get_user_model().objects.count() == 1
    first.refresh_from_db()
    assert first.password == password_hash
    assert "Created" not in output and "Log in as 'admin'" in output
    password = (var_dir / "initial-admin-password.txt").read_text().strip()
    assert password not in output  # only the start that created it prints it


def test_an_existing_superuser_means_nothing_is_created(db, var_dir, make_user):
    make_user("boss", is_superuser=True, is_staff=True)
    output = ensure_admin()
    assert get_user_model().objects.count() == 1
    assert not (var_dir / "initial-admin-password.txt").exists()
    assert "changepassword" in output


def test_the_username_can_be_chosen(db, var_dir):
    ensure_admin("--username", "ops")
    assert get_user_model().objects.get().username == "ops"
