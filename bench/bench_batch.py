"""Batch throughput: 2,000 cells against a Maxim-compatible server answering after 200 ms,
with a concurrency limit of 32, sent by real `manage.py db_worker` processes: one worker on
SQLite, then two workers sharing the batch on PostgreSQL (issue #12).

    python bench/bench_batch.py [--cells 2000] [--latency 0.2] [--concurrency 32] [--only sqlite|postgres]

Standalone: a throwaway SQLite file, a throwaway PostgreSQL cluster (initdb/pg_ctl from
/usr/lib/postgresql/*/bin, run as the postgres user when root; skipped, and said so, when not
installed) and the FakeMaxim server. Each pass runs in its own process (`--pass NAME
--database-url URL`) because Django reads DATABASE_URL once, at setup. Timed from start_batch
(what the start view calls) until the batch is done, i.e. the last cell is stored and visible on
the page. Ideal = cells x latency / concurrency. Also prints the dashboard's own cost per cell
(recording, pricing, checks, rollups: the worker's wall time per cell beyond waiting for Maxim)
and checks that no cell was sent twice.
Last line: RESULT sqlite_ratio=<x> pg_ratio=<y or pg=skipped> ... ratio=<worst of the two>
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKS = [{"type": "contains", "value": "Echo"}, {"type": "length", "max": 200}]
WORKERS = {"sqlite": 1, "postgres": 2}
WORKER_INTERVAL = "0.1"  # as `make run` and `make worker` start them (the Makefile's WORKER_INTERVAL)
COST = re.compile(r"(\d+) cells, dashboard cost per cell median ([0-9.]+) ms CPU, ([0-9.]+) ms wall")
PASS_LINE = re.compile(r"^PASS (\w+) ratio=([0-9.]+) cell_ms=([0-9.na]+) twice=(\d+)$")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())  # a busy machine stretches every figure


def server_cpu_seconds() -> float:
    """PostgreSQL's CPU so far: the postmaster's and its reaped backends' (cutime, cstime), as the
    workers' cost lines leave out what the server spends on their queries. 0 without a cluster."""
    pid = os.environ.get("BENCH_PG_POSTMASTER")
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(tick) for tick in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# --- one pass, in its own process: Django set up on the database given ----------------------------


def seed(fake, cells: int):
    from devtools.seeding import seed_versions
    from prompts_app.models import TestCase, TestSet

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


def read_costs(stream, found: list[str], ready: threading.Event, label: str) -> None:
    """A worker's stderr: keep its cost lines (one per slice), pass warnings and errors through."""
    for line in stream:
        if "Starting worker" in line:
            ready.set()
        elif COST.search(line):
            found.append(f"{label}: {line.strip()}")
        elif "WARNING" in line or "ERROR" in line or "Traceback" in line:
            sys.stderr.write(line)


def process_cpu_seconds(pid: int) -> float:
    """A live process's own CPU so far (utime + stime, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(tick) for tick in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def start_workers(count: int, costs: list[str]) -> list[subprocess.Popen]:
    # INFO for the workers: their per-slice line "dashboard cost per cell median ..." is read.
    env = {**os.environ, "MAXIMUI_BATCH_SLICE_SECONDS": "30", "LOG_LEVEL": "INFO"}
    command = [sys.executable, "manage.py", "db_worker", "--backend", "database", "--no-startup-delay"]
    if profile := os.environ.get("BENCH_PROFILE"):  # a script that runs its arguments under a profiler
        command.insert(1, profile)
    workers, readies = [], []
    for n in range(count):
        worker = subprocess.Popen(
            [*command, "--interval", WORKER_INTERVAL], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        ready = threading.Event()
        threading.Thread(target=read_costs, args=(worker.stderr, costs, ready, f"worker {n + 1}"), daemon=True).start()
        workers.append(worker)
        readies.append(ready)
    # Up and polling, as under make run (their start-up, seconds on a busy machine, is not the batch's).
    if not all(ready.wait(timeout=180) for ready in readies):
        raise SystemExit("a worker did not start")
    time.sleep(0.5)
    return workers


def phases(requests, started: float, done: float, concurrency: int) -> str:
    """Where the batch's time went: before the first request, the cells with Maxim on average in
    between (the limit is the most there may be), after the last answer until the batch is done."""
    if not requests:
        return "phases: no request"
    first = min(r.arrived for r in requests)
    last = max(r.finished or r.arrived for r in requests)
    held = sum((r.finished or last) - r.arrived for r in requests)
    # Cells with Maxim on average in each second from the first request: where slots were lost
    # (the start, while a second worker joins, the steady middle or the tail).
    seconds = int(last - first) + 1
    per_second = [0.0] * seconds
    for r in requests:
        begin, end = r.arrived - first, (r.finished or last) - first
        while begin < end:
            second = int(begin)
            step = min(end, second + 1) - begin
            per_second[second] += step
            begin += step
    tail = (last - first) - (seconds - 1)
    per_second[-1] /= tail or 1
    return (
        f"phases: click to first request {first - started:.3f} s; {held / (last - first):.1f} of {concurrency} "
        f"with Maxim on average over {last - first:.2f} s; last answer to done {done - last:.3f} s\n"
        f"with Maxim, second by second: {' '.join(f'{n:.1f}' for n in per_second)}"
    )


def run_pass(name: str, database_url: str, args: argparse.Namespace) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="maximui.settings", MAXIMUI_TESTING="1", DATABASE_URL=database_url)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from devtools.maxim_server import FakeMaxim
    from prompts_app.models import BatchComparison
    from prompts_app.services import batches

    call_command("migrate", verbosity=0)
    from prompts_app import pricing

    # What the web server loads when it starts (runner.start), before anyone presses Start.
    pricing.warm_up()
    pricing.warm_up_tokenizers()
    load_before = loadavg()
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    settings.MAXIMUI_BATCH_CHAINS = WORKERS[name]
    costs: list[str] = []
    with FakeMaxim(run_delay=args.latency) as fake:
        user, workspace, version, test_set = seed(fake, args.cells)
        server_before = server_cpu_seconds()
        workers = start_workers(WORKERS[name], costs)
        try:
            worker_cpu = -sum(process_cpu_seconds(worker.pid) for worker in workers)
            own_cpu = -time.process_time()  # this process: the fake Maxim's threads, and the polling below
            started = time.perf_counter()
            started_at = time.monotonic()  # the fake's clock
            batch = batches.start_batch(
                workspace=workspace,
                test_set=test_set,
                columns=[batches.ColumnChoice(version)],
                user=user,
                concurrency=args.concurrency,
                checks=CHECKS,
            )
            # No task enqueued by hand: start_batch hands the batch to as many chains as there are
            # workers (MAXIMUI_BATCH_CHAINS, what a team running them sets), so each worker joins as it
            # would after a person's click.
            print(f"start_batch and its tasks: {time.perf_counter() - started:.3f} s")
            while not BatchComparison.objects.filter(pk=batch.pk, status=BatchComparison.Status.DONE).exists():
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            print(phases(fake.requests_to("/v1/prompts/run"), started_at, time.monotonic(), args.concurrency))
            worker_cpu += sum(process_cpu_seconds(worker.pid) for worker in workers)
            own_cpu += time.process_time()
            print(
                f"the fake Maxim's process CPU during the batch: {own_cpu:.1f} s, {own_cpu * 1000 / args.cells:.2f} ms per cell"
            )
            print(
                f"worker processes' CPU during the batch: {worker_cpu:.1f} s, "
                f"{worker_cpu * 1000 / args.cells:.2f} ms per cell (everything: tasks, polling, threads)"
            )
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
        sent = Counter(r.body["messages"][0]["content"] for r in fake.requests_to("/v1/prompts/run"))
    connections.close_all()  # our backend exits too, so its polling is counted below
    time.sleep(0.3)  # the readers' last lines; the backends reaped
    if server := server_cpu_seconds() - server_before:
        print(
            f"PostgreSQL server CPU, workers' start to exit: {server:.1f} s, {server * 1000 / args.cells:.2f} ms per cell"
        )
    report(name, args, elapsed, sent, costs, load_before)


def report(name: str, args, elapsed: float, sent: Counter, costs: list[str], load_before: str) -> None:
    ideal = args.cells * args.latency / args.concurrency
    twice = sum(n - 1 for n in sent.values() if n > 1)
    overhead_ms = max(0.0, elapsed / args.cells * args.concurrency - args.latency) * 1000
    print(
        f"cells={args.cells} sent={sum(sent.values())} distinct={len(sent)} sent twice={twice} workers={WORKERS[name]}"
    )
    for line in costs:
        print(line)
    per_worker = Counter()
    for line in costs:  # "worker N: batch B: C cells, ..."
        label, _, rest = line.partition(": batch ")
        if found := COST.search(rest):
            per_worker[label] += int(found[1])
    print("cells per worker: " + ", ".join(f"{label} {n}" for label, n in sorted(per_worker.items())))
    # One line per worker and task slice (a 30 s slice: usually one each); the cell-weighted mean of their medians.
    slices = [(int(n), float(cpu), float(wall)) for n, cpu, wall in COST.findall("\n".join(costs))]
    counted = sum(n for n, _, _ in slices) or 1
    median_ms = sum(n * cpu for n, cpu, _ in slices) / counted if slices else float("nan")
    wall_ms = sum(n * wall for n, _, wall in slices) / counted if slices else float("nan")
    print(
        f"dashboard cost per cell (recording, pricing, checks, rollups, the HTTP client): median {median_ms:.2f} ms "
        f"CPU (target <= 5); {wall_ms:.2f} ms wall, waiting for a CPU included"
    )
    print(
        f"batch {elapsed:.2f} s, ideal {ideal:.2f} s, ratio {elapsed / ideal:.3f}, {args.cells / elapsed:.1f} cells/s; "
        f"per cell beyond Maxim's wait ~{overhead_ms:.1f} ms per slot"
    )
    print(f"load average before and after: {load_before} -> {loadavg()}")
    print(f"PASS {name} ratio={elapsed / ideal:.3f} cell_ms={median_ms:.2f} twice={twice}", flush=True)


# --- the orchestrating process: a database per pass, each pass a child process -----------------------


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def free_port(preferred: int = 55470) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise SystemExit("no free port")


def as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the cluster as the postgres user then."""
    if os.geteuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]


class Cluster:
    """A throwaway PostgreSQL cluster: data and socket under /tmp, trust auth on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="maximui-bench-pg-", dir="/tmp"))
        self.port = free_port()
        self.started = False

    def run(self, *command: str) -> None:
        subprocess.run(as_postgres(list(command)), check=True, stdout=subprocess.DEVNULL)

    def __enter__(self) -> str:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        data = str(self.dir / "data")
        self.run(str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self.started = True
        self.run(str(self.bin / "pg_ctl"), "-D", data, "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        self.run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "bench")
        return f"postgres://postgres@127.0.0.1:{self.port}/bench"

    def __exit__(self, *exc) -> None:
        try:
            if self.started:
                self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def child(name: str, database_url: str, args: argparse.Namespace) -> tuple[float, str, int]:
    """Runs one pass in its own process, echoing its lines; its ratio, cost per cell and cells sent twice."""
    print(f"== {name}: {WORKERS[name]} worker(s)", flush=True)
    sizes = ["--cells", str(args.cells), "--latency", str(args.latency), "--concurrency", str(args.concurrency)]
    command = [sys.executable, __file__, "--pass", name, "--database-url", database_url, *sizes]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    found = None
    for line in proc.stdout:
        print(line, end="", flush=True)
        found = PASS_LINE.match(line.strip()) or found
    if proc.wait() != 0 or found is None:
        raise SystemExit(f"the {name} pass failed (exit {proc.returncode})")
    return float(found[2]), found[3], int(found[4])


def sqlite_pass(args: argparse.Namespace) -> tuple[float, str, int]:
    # One file per run: two benchmarks on one machine must not share (and delete) each other's database.
    db_file = f"/tmp/maximui-bench-batch-{os.getpid()}.sqlite3"
    try:
        return child("sqlite", f"sqlite:///{db_file}", args)
    finally:
        for suffix in ("", "-wal", "-shm", ".runs-stored"):  # the last: run_watch's stamp file
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--pass", dest="pass_name", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pass_name:
        return run_pass(args.pass_name, args.database_url, args)
    fields, ratios, twice = [], [], 0
    if args.only != "postgres":
        ratio, cell_ms, sent_twice = sqlite_pass(args)
        fields += [f"sqlite_ratio={ratio:.3f}", f"sqlite_cell_ms={cell_ms}"]
        ratios.append(ratio)
        twice += sent_twice
    if args.only != "sqlite":
        bin_dir = pg_bin()
        if bin_dir is None:
            print("== postgres: skipped, PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
            fields.append("pg=skipped")
        else:
            with (cluster := Cluster(bin_dir)) as url:
                os.environ["BENCH_PG_POSTMASTER"] = (cluster.dir / "data" / "postmaster.pid").read_text().split()[0]
                ratio, cell_ms, sent_twice = child("postgres", url, args)
            fields += [f"pg_ratio={ratio:.3f}", f"pg_cell_ms={cell_ms}"]
            ratios.append(ratio)
            twice += sent_twice
    worst = f"{max(ratios):.3f}" if ratios else "none"
    print(f"RESULT {' '.join(fields)} sent_twice={twice} ratio={worst}")
    if twice:
        raise SystemExit("a cell was sent twice")


if __name__ == "__main__":
    main()
