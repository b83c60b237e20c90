"""CSV and JSON export of 1,000,000 runs: peak memory of the exporting process must stay < 150 MB.

The export runs in a child process (seeding happens in an earlier, separate one, so its
memory is not counted); the child reports its own peak RSS (getrusage RUSAGE_SELF).

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
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return {
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
            f"in {figures['seconds']} s; peak RSS {figures['peak_mb']} MB "
            f"(after start-up {figures['baseline_mb']} MB); limit {LIMIT_MB} MB"
        )
        ok &= figures["peak_mb"] < LIMIT_MB
        result += [
            f"{fmt}_seconds={figures['seconds']}",
            f"{fmt}_mb={figures['bytes'] / 1e6:.0f}",
            f"{fmt}_peak_rss_mb={figures['peak_mb']}",
        ]
    print("RESULT " + " ".join(result) + f" under_limit={ok}")


if __name__ == "__main__":
    main()
