"""CSV and JSON export of 1,000,000 runs: peak memory of the exporting process must stay < 150 MB.

The export runs in a child process (seeding happens in an earlier, separate one, so its
memory is not counted). The limit is on the process's own memory: the peak of its private
(anonymous) resident memory, RssAnon in /proc/self/status, read every 64 chunks it streams.
Its peak RSS (getrusage) is printed too, but it counts the database file's pages that SQLite
maps (PRAGMA mmap_size, settings.py, since issue #8): the OS's file cache, shared and dropped
under pressure, which grew to 666 MB with the file while the export's own memory stayed flat.

    python bench/bench_export.py [N]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
LIMIT_MB = 150


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def private_mb() -> float:
    """Resident memory that is the process's own (heap, stacks), not mapped files."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def export_in_this_process(n: int, fmt: str) -> dict:
    import seed

    seed.ensure(n)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username=seed.BENCH_USER))
    baseline = peak_mb()
    started = time.perf_counter()
    response = client.get(f"/runs/export.{fmt}")
    assert response.status_code == 200 and response.streaming
    size = lines = 0
    private_baseline = private_peak = private_mb()
    for n, chunk in enumerate(response.streaming_content):
        size += len(chunk)
        lines += chunk.count(b"\n")
        if n % 64 == 0:
            private_peak = max(private_peak, private_mb())
    return {
        "private_baseline_mb": round(private_baseline, 1),
        "private_peak_mb": round(private_peak, 1),
        "format": fmt,
        "bytes": size,
        "lines": lines,
        "seconds": round(time.perf_counter() - started, 1),
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak_mb(), 1),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        n, fmt = int(sys.argv[2]), sys.argv[3]
        print(json.dumps(export_in_this_process(n, fmt)))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    subprocess.run([sys.executable, str(HERE / "seed.py"), str(n)], check=True, capture_output=True)
    result = [f"export_rows={n}"]
    ok = True
    for fmt in ("csv", "json"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), fmt], check=True, capture_output=True, text=True
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{fmt.upper()} export of {n:,} runs: {figures['bytes'] / 1e6:,.0f} MB, {figures['lines']:,} lines "
            f"in {figures['seconds']} s; private memory peak {figures['private_peak_mb']} MB (after start-up "
            f"{figures['private_baseline_mb']} MB), limit {LIMIT_MB} MB; peak RSS {figures['peak_mb']} MB with the "
            f"database pages SQLite maps (after start-up {figures['baseline_mb']} MB)"
        )
        ok &= figures["private_peak_mb"] < LIMIT_MB
        result += [
            f"{fmt}_seconds={figures['seconds']}",
            f"{fmt}_mb={figures['bytes'] / 1e6:.0f}",
            f"{fmt}_private_peak_mb={figures['private_peak_mb']}",
            f"{fmt}_peak_rss_mb={figures['peak_mb']}",
        ]
    print("RESULT " + " ".join(result) + f" under_limit={ok}")


if __name__ == "__main__":
    main()
