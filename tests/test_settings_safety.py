"""Settings that would make the server unsafe stop start-up: DEBUG facing a network, a bad allow-list.

Each case imports maximui.settings in a fresh interpreter (see tests/test_settings.py).
"""

from __future__ import annotations

import pytest
from tests.conftest import SECRETS, load_settings


@pytest.mark.parametrize("hosts", ["maximui.example.com", "*", "127.0.0.1,10.0.0.7"])
def test_debug_with_a_non_loopback_host_stops_start_up(hosts):
    # A debug page shows local variables (once, a decrypted key among them) to whoever reaches it.
    result = load_settings({"DEBUG": "1", "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert "DEBUG=1 is only for a loopback server" in result.stderr


def test_debug_on_loopback_still_starts():
    result = load_settings({"DEBUG": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]"})
    assert result.returncode == 0, result.stderr


def test_the_default_outbound_policy_is_maxims_api_only():
    result = load_settings({**SECRETS}, "import maximui.settings as s; print(s.MAXIMUI_ALLOWED_BASE_URLS)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['https://api.getmaxim.ai']"


def test_a_bad_allow_list_entry_stops_start_up():
    result = load_settings({**SECRETS, "MAXIMUI_ALLOWED_BASE_URLS": "https://api.getmaxim.ai,maxim.internal"})
    assert result.returncode != 0
    assert "'maxim.internal' is not an origin" in result.stderr
