"""How much time the dashboard adds to a run, compared with calling Maxim directly.

    python bench/bench_run_overhead.py [-n 200]

Both paths talk to devtools.maxim_server.FakeMaxim on loopback (no run delay). "direct" is
one httpx POST of the run body; "dashboard" is the run form posted through Django's test
client (URL routing, login, access check, form validation, recording the pending run,
the call, pricing, saving, rendering the result fragment) on a throwaway SQLite file.
The two are interleaved so machine noise hits both alike.
Last line: RESULT run_overhead_ms=<x> direct_median_ms=<y> dashboard_median_ms=<z>
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_db_dir = tempfile.mkdtemp(prefix="maximui-bench-")
atexit.register(shutil.rmtree, _db_dir, ignore_errors=True)
os.environ["DJANGO_SETTINGS_MODULE"] = "maximui.settings"
os.environ["MAXIMUI_TESTING"] = "1"
os.environ["DATABASE_URL"] = f"sqlite:///{_db_dir}/bench.sqlite3"

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from prompts_app.models import Membership, Prompt, PromptVersion, Role, Run, Workspace  # noqa: E402
from prompts_app.services.runs import build_run_body  # noqa: E402
from devtools.maxim_server import FakeMaxim  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a support agent for {{company}}."},
    {"role": "user", "content": "Hello, I am {{name}}."},
]


def seed(maxim: FakeMaxim) -> tuple[object, PromptVersion]:
    maxim_prompt = maxim.add_prompt("ws_default", "Bench prompt")
    maxim_version = maxim.add_version(
        {
            "promptId": maxim_prompt["id"],
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "messages": MESSAGES,
            "modelParameters": {"temperature": 0.2},
        }
    )
    user = get_user_model().objects.create_user("bench", password="bench-pw")
    workspace = Workspace(name="Bench", maxim_id="ws_default", base_url=maxim.base_url, created_by=user)
    workspace.set_api_key(maxim.api_key)
    workspace.save()
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    prompt = Prompt.objects.create(workspace=workspace, maxim_id=maxim_prompt["id"], name="Bench prompt")
    version = PromptVersion.objects.create(
        prompt=prompt,
        maxim_id=maxim_version["id"],
        number=1,
        provider="openai",
        model_name="gpt-4o",
        model_parameters={"temperature": 0.2},
        messages=MESSAGES,
    )
    return user, version


def form(turn: str) -> dict[str, str]:
    return {
        "idempotency_key": uuid.uuid4().hex,
        "turn-TOTAL_FORMS": "1",
        "turn-INITIAL_FORMS": "0",
        "turn-0-role": "user",
        "turn-0-content": turn,
        "var__company": "Acme",
        "var__name": "Ann",
    }


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return f"{name:<10} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   (n={len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # one log line per run would be measured too
    call_command("migrate", verbosity=0)
    setup_test_environment()  # lets the test client use the "testserver" host

    with FakeMaxim(run_delay=0.0) as maxim:
        user, version = seed(maxim)
        client = Client()
        client.force_login(user)
        url = reverse("version_run", args=[version.pk])
        body = build_run_body(
            version=version,
            content=version.content(),
            inputs={
                "turns": [{"role": "user", "content": "Where is my order?"}],
                "variables": {"company": "Acme", "name": "Ann"},
            },
        )
        headers = {"x-maxim-api-key": maxim.api_key, "Content-Type": "application/json"}
        direct_http = httpx.Client(timeout=10)

        def direct() -> float:
            started = time.perf_counter()
            response = direct_http.post(maxim.base_url + "/v1/prompts/run", json=body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            return elapsed

        def dashboard() -> float:
            started = time.perf_counter()
            response = client.post(url, form("Where is my order?"), headers={"HX-Request": "true"})
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200 and b"Succeeded" in response.content, response.content[:500]
            return elapsed

        for _ in range(args.warmup):
            direct(), dashboard()
        direct_ms, dashboard_ms = [], []
        for _ in range(args.n):
            direct_ms.append(direct())
            dashboard_ms.append(dashboard())
        direct_http.close()
        failed = Run.objects.exclude(status=Run.Status.SUCCESS).count()
        violations = maxim.violations

    print(summary("direct", direct_ms))
    print(summary("dashboard", dashboard_ms))
    if failed or violations:
        print(f"WARNING: {failed} runs did not succeed; spec violations: {violations[:3]}")
    overhead = statistics.median(dashboard_ms) - statistics.median(direct_ms)
    print(f"median overhead {overhead:.2f} ms (target <= 15 ms)")
    print(
        f"RESULT run_overhead_ms={overhead:.2f} direct_median_ms={statistics.median(direct_ms):.2f} "
        f"dashboard_median_ms={statistics.median(dashboard_ms):.2f}"
    )


if __name__ == "__main__":
    main()
