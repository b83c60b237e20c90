"""Security headers: a strict Content-Security-Policy on every page, templates it can
run (no inline script, style attribute, event handler or hx-on), and a deploy-clean
configuration behind TLS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("url_name", ["login", "home"])
def test_pages_carry_a_strict_content_security_policy(client, owner, url_name):
    if url_name == "home":
        client.force_login(owner)
    response = client.get(reverse(url_name))
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"][0] == "'self'" and csp["script-src"][1].startswith("'nonce-")
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "http" not in policy


def test_every_script_tag_carries_the_nonce_and_htmx_may_not_eval(client_for, owner):
    response = client_for(owner).get(reverse("home"))
    nonce = directives(response)["script-src"][1][len("'nonce-") : -1]
    page = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert len(scripts) >= 2
    for tag in scripts:
        assert 'src="/static/' in tag and f'nonce="{nonce}"' in tag, tag
    assert '"allowEval": false' in page and '"includeIndicatorStyles": false' in page


def test_the_nonce_changes_on_every_response(client):
    first = directives(client.get(reverse("login")))["script-src"][1]
    second = directives(client.get(reverse("login")))["script-src"][1]
    assert first != second


INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>"  # an inline script
    r"|\shx-on[:-]"  # htmx event handlers are evaluated code
    r"|\son[a-z]+\s*=\s*[\"']"  # onclick= and friends
    r"|\sstyle\s*=\s*[\"']"  # style attributes (style-src has no 'unsafe-inline')
    r"|(?:hx-vals|hx-vars)\s*=\s*[\"']\s*(?:js|javascript):"  # evaluated values
    r"|hx-trigger\s*=\s*\"[^\"]*\[",  # trigger filters are evaluated
    re.IGNORECASE,
)


def test_no_template_has_inline_code_the_policy_would_block():
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        for lineno, line in enumerate(template.read_text().splitlines(), 1):
            if INLINE.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{lineno}: {line.strip()[:120]}")
    assert not offenders, "\n".join(offenders)


def test_the_error_pages_render_without_style_attributes(client_for, outsider, workspace):
    response = client_for(outsider).get(reverse("workspace_settings", args=[workspace.pk]))
    assert response.status_code == 404
    assert " style=" not in response.content.decode()


def test_framing_and_sniffing_are_refused(client):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


# -- deploy configuration -------------------------------------------------------------------

SECURE_ENV = {
    "SECRET_KEY": "k3Y-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP",
    "MAXIMUI_ENCRYPTION_KEYS": "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE=",
    "ALLOWED_HOSTS": "maximui.example.com",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_PROXY_SSL_HEADER": "1",
}


def run(args: list[str], env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {
        "PATH": os.environ.get("PATH", ""),
        "MAXIMUI_ENV_FILE": "",
        "MAXIMUI_VAR_DIR": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_debug_off_behind_tls(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], SECURE_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_tls_settings_check_deploy_complains(tmp_path):
    env = {k: v for k, v in SECURE_ENV.items() if not k.startswith("SECURE_")}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_tls_settings_come_from_the_environment(tmp_path):
    code = (
        "import maximui.settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE)"
    )
    result = run(["-c", code], SECURE_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')", "True"]


def test_a_bad_hsts_value_names_the_variable(tmp_path):
    result = run(["-c", "import maximui.settings"], {**SECURE_ENV, "SECURE_HSTS_SECONDS": "a year"}, tmp_path)
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS='a year'" in result.stderr
