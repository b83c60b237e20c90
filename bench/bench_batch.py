"""Batch throughput: 2,000 cells against a Maxim-compatible server answering after 200 ms,
with a concurrency limit of 32, sent by one real `manage.py db_worker` on SQLite.

    python bench/bench_batch.py [--cells 2000] [--latency 0.2] [--concurrency 32]

Standalone: a throwaway SQLite file and the FakeMaxim server. Timed from start_batch (what the
start view calls) until the batch is done, i.e. the last cell is stored and visible on the page.
Ideal = cells x latency / concurrency. Also prints the dashboard's own cost per cell (recording,
pricing, checks, rollups: the worker's wall time per cell beyond waiting for Maxim).
Last line: RESULT batch_s=<x> ideal_s=<y> ratio=<x/y>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB_FILE = Path("/tmp/maximui-bench-batch.sqlite3")

sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "maximui.settings"
os.environ["MAXIMUI_TESTING"] = "1"
os.environ["DATABASE_URL"] = f"sqlite:///{DB_FILE}"
os.environ.setdefault("LOG_LEVEL", "WARNING")
for suffix in ("", "-wal", "-shm"):
    Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from prompts_app.models import (  # noqa: E402
    BatchComparison, Membership, Prompt, PromptVersion, Role, TestCase, TestSet, Workspace,
)
from prompts_app.services import batches  # noqa: E402
from tests.maxim_server import FakeMaxim  # noqa: E402

CHECKS = [{"type": "contains", "value": "Echo"}, {"type": "length", "max": 200}]


def seed(fake: FakeMaxim, cells: int):
    user = get_user_model().objects.create_user("bench", password="bench-pw")
    workspace = Workspace(name="Bench", maxim_id="ws_default", base_url=fake.base_url)
    workspace.set_api_key(fake.api_key)
    workspace.save()
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    remote = fake.add_prompt(workspace.maxim_id, "Support reply")
    prompt = Prompt.objects.create(workspace=workspace, maxim_id=remote["id"], name="Support reply")
    version = PromptVersion(prompt=prompt, number=1, provider="openai", model_name="gpt-4o-mini",
                            messages=[{"role": "system", "content": "You answer for {{company}}."}])  # fmt: skip
    version.maxim_id = fake.add_version(version.to_api_payload())["id"]
    version.save()
    test_set = TestSet.objects.create(workspace=workspace, name="Bench", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": f"Co{n}"},
                 turns=[{"role": "user", "content": f"Question {n}"}])
        for n in range(cells)
    )  # fmt: skip
    return user, workspace, version, test_set


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    env = {**os.environ, "MAXIMUI_BATCH_SLICE_SECONDS": "30"}
    with FakeMaxim(run_delay=args.latency) as fake:
        user, workspace, version, test_set = seed(fake, args.cells)
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--backend", "database", "--no-startup-delay", "--interval", "0.05"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        time.sleep(3)  # the worker is up and polling, as under make run
        try:
            started = time.perf_counter()
            batch = batches.start_batch(
                workspace=workspace, test_set=test_set, columns=[batches.ColumnChoice(version)], user=user,
                concurrency=args.concurrency, checks=CHECKS,
            )  # fmt: skip
            while BatchComparison.objects.filter(pk=batch.pk, status=BatchComparison.Status.DONE).count() == 0:
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        sent = len(fake.requests_to("/v1/prompts/run"))
    ideal = args.cells * args.latency / args.concurrency
    overhead_ms = max(0.0, elapsed / args.cells * args.concurrency - args.latency) * 1000
    print(f"cells={args.cells} sent={sent} concurrency={args.concurrency} latency={args.latency}s")
    print(f"batch {elapsed:.2f} s, ideal {ideal:.2f} s; per cell beyond Maxim's wait ~{overhead_ms:.1f} ms per slot")
    print(f"RESULT batch_s={elapsed:.2f} ideal_s={ideal:.2f} ratio={elapsed / ideal:.3f}")


if __name__ == "__main__":
    main()
