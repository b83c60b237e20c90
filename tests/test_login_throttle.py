"""Login is throttled: guessing passwords gets a username locked out from that address."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

LOGIN = "/login/"


def attempt(client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_after_five_wrong_passwords_the_right_one_no_longer_logs_in(client, owner):
    statuses = [attempt(client, "olivia", f"guess-{guess}").status_code for guess in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks
    response = attempt(client, "olivia", "pw-olivia")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Too many failed attempts" in page and "try again in 15 minutes" in page
    assert 'role="alert"' in page
    assert 'class="topbar"' in page  # the app's own layout, not a bare error page
    assert 'value="olivia"' in page


def test_a_locked_out_attempt_does_not_check_the_password(client, owner, monkeypatch):
    for guess in range(5):
        attempt(client, "olivia", f"guess-{guess}")
    from django.contrib.auth.backends import ModelBackend

    def fail(*args, **kwargs):
        raise AssertionError("the password was checked while locked out")

    monkeypatch.setattr(ModelBackend, "authenticate", fail)
    assert attempt(client, "olivia", "guess-again").status_code == 429


def test_the_lock_is_per_username_and_address(client, owner, make_user):
    make_user("nina")
    for guess in range(5):
        attempt(client, "olivia", f"guess-{guess}")
    attempt(client, "nina", "pw-nina")
    assert client.session.get("_auth_user_id")  # another account from the same address still logs in
    client.logout()
    response = attempt(client, "olivia", "pw-olivia", ip="198.51.100.9")
    assert response.status_code == 302  # the same account from elsewhere too


def test_a_success_before_the_limit_resets_the_count(client, owner):
    for guess in range(4):
        attempt(client, "olivia", f"guess-{guess}")
    assert attempt(client, "olivia", "pw-olivia").status_code == 302
    client.logout()
    for guess in range(4):
        attempt(client, "olivia", f"guess-{guess}")
    assert attempt(client, "olivia", "pw-olivia").status_code == 302


def test_the_lock_ends_after_fifteen_minutes(client, owner):
    from axes.models import AccessAttempt
    from django.utils import timezone
    from datetime import timedelta

    for guess in range(5):
        attempt(client, "olivia", f"guess-{guess}")
    assert attempt(client, "olivia", "pw-olivia").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, "olivia", "pw-olivia").status_code == 302


def test_force_login_is_not_throttled(client, owner):
    client.force_login(owner)
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.parametrize("password", ["12345678901234", "4815162342000"])
def test_an_all_digit_password_is_refused(password, db):
    with pytest.raises(ValidationError):
        validate_password(password)
