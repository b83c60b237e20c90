"""bench/bench_import.py still runs against the code it measures: it broke unseen when confirm_upload
began returning Imported(cases, skipped) (an AssertionError before any figure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_benchmark_runs_on_a_small_file_and_ends_with_its_result_line():
    done = subprocess.run(
        [sys.executable, "bench/bench_import.py", "200"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("RESULT import_10k_seconds=")
