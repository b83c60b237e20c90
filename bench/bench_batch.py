"""Batch throughput: 2,000 cells against a Maxim-compatible server answering after 200 ms,
with a concurrency limit of 32, sent by one real `manage.py db_worker` on SQLite.

    python bench/bench_batch.py [--cells 2000] [--latency 0.2] [--concurrency 32]

Standalone: a throwaway SQLite file and the FakeMaxim server. Timed from start_batch (what the
start view calls) until the batch is done, i.e. the last cell is stored and visible on the page.
Ideal = cells x latency / concurrency. Also prints the dashboard's own cost per cell (recording,
pricing, checks, rollups: the worker's wall time per cell beyond waiting for Maxim).
Last line: RESULT batch_s=<x> ideal_s=<y> ratio=<x/y> cell_ms=<median dashboard cost per cell>
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One file per run: two benchmarks on one machine must not share (and delete) each other's database.
DB_FILE = Path(f"/tmp/maximui-bench-batch-{os.getpid()}.sqlite3")

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
from django.core.management import call_command  # noqa: E402

from prompts_app.models import BatchComparison, TestCase, TestSet  # noqa: E402
from prompts_app.services import batches  # noqa: E402
from devtools.maxim_server import FakeMaxim  # noqa: E402
from devtools.seeding import seed_versions  # noqa: E402

CHECKS = [{"type": "contains", "value": "Echo"}, {"type": "length", "max": 200}]


def seed(fake: FakeMaxim, cells: int):
    seeded = seed_versions(fake, columns=1, system="You answer for {{company}}.")
    test_set = TestSet.objects.create(workspace=seeded.workspace, name="Bench", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(
            test_set=test_set,
            position=n,
            variables={"company": f"Co{n}"},
            turns=[{"role": "user", "content": f"Question {n}"}],
        )
        for n in range(cells)
    )
    return seeded.users[0], seeded.workspace, seeded.versions[0], test_set


COST = re.compile(r"(\d+) cells, dashboard cost per cell median ([0-9.]+) ms CPU, ([0-9.]+) ms wall")


def read_costs(stream, found: list[str], ready: threading.Event) -> None:
    """The worker's stderr: keep its cost lines (one per slice), pass warnings and errors through."""
    for line in stream:
        if "Starting worker" in line:
            ready.set()
        elif COST.search(line):
            found.append(line.strip())
        elif "WARNING" in line or "ERROR" in line or "Traceback" in line:
            sys.stderr.write(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())  # a busy machine stretches every figure
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    # INFO for the worker: its per-slice line "dashboard cost per cell median ..." is read below.
    env = {**os.environ, "MAXIMUI_BATCH_SLICE_SECONDS": "30", "LOG_LEVEL": "INFO"}
    with FakeMaxim(run_delay=args.latency) as fake:
        user, workspace, version, test_set = seed(fake, args.cells)
        worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--backend",
                "database",
                "--no-startup-delay",
                "--interval",
                "0.05",
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        costs: list[str] = []
        ready = threading.Event()
        reader = threading.Thread(target=read_costs, args=(worker.stderr, costs, ready), daemon=True)
        reader.start()
        # The worker is up and polling, as under make run (its start-up, seconds on a busy machine, is not the batch's).
        if not ready.wait(timeout=180):
            raise SystemExit("the worker did not start")
        time.sleep(0.5)
        try:
            started = time.perf_counter()
            batch = batches.start_batch(
                workspace=workspace,
                test_set=test_set,
                columns=[batches.ColumnChoice(version)],
                user=user,
                concurrency=args.concurrency,
                checks=CHECKS,
            )
            while BatchComparison.objects.filter(pk=batch.pk, status=BatchComparison.Status.DONE).count() == 0:
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            reader.join(timeout=10)
        sent = len(fake.requests_to("/v1/prompts/run"))
    ideal = args.cells * args.latency / args.concurrency
    overhead_ms = max(0.0, elapsed / args.cells * args.concurrency - args.latency) * 1000
    print(f"cells={args.cells} sent={sent} concurrency={args.concurrency} latency={args.latency}s")
    for line in costs:
        print(line)
    # One line per task slice (a 30 s slice: usually one); the cell-weighted mean of their medians.
    slices = [(int(n), float(cpu), float(wall)) for n, cpu, wall in COST.findall("\n".join(costs))]
    counted = sum(n for n, _, _ in slices) or 1
    median_ms = sum(n * cpu for n, cpu, _ in slices) / counted if slices else float("nan")
    wall_ms = sum(n * wall for n, _, wall in slices) / counted if slices else float("nan")
    print(
        f"dashboard cost per cell (recording, pricing, checks, rollups, the HTTP client): median {median_ms:.2f} ms "
        f"CPU (target <= 5); {wall_ms:.2f} ms wall, waiting for a CPU included"
    )
    print(f"batch {elapsed:.2f} s, ideal {ideal:.2f} s; per cell beyond Maxim's wait ~{overhead_ms:.1f} ms per slot")
    print(f"load average before and after: {load_before} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"RESULT batch_s={elapsed:.2f} ideal_s={ideal:.2f} ratio={elapsed / ideal:.3f} cell_ms={median_ms:.2f}")


if __name__ == "__main__":
    try:
        main()
    finally:
        for suffix in ("", "-wal", "-shm", ".runs-stored"):  # the last: run_watch's stamp file
            Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)
