"""Importing a 10,000-case CSV into a test set: seconds and peak memory.

Parses the upload for its preview, then confirms it (the bulk insert), against a fresh
SQLite database in a temporary directory. The time is taken without tracing; a second
import into another set runs under tracemalloc for the peak of Python allocations.

    python bench/bench_import.py [ROWS]
"""

from __future__ import annotations

import csv
import io
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORDS = "order refund parcel invoice account password delivery late broken price discount summary".split()


def make_csv(rows: int) -> bytes:
    rng = random.Random(12)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "company", "question", "expected_output", "input"])
    for i in range(rows):
        question = " ".join(rng.choices(WORDS, k=30))
        writer.writerow(
            [f"Customer {i}", f"Company {i % 97}", question, f"Answer about {question[:60]}", f"Hi, {question}?"]
        )
    return out.getvalue().encode()


def setup_django(directory: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench-import.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maximui.settings")
    os.environ.setdefault("MAXIMUI_TESTING", "1")  # throwaway secrets
    os.environ["MAXIMUI_ENV_FILE"] = ""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def import_once(test_set, user, data: bytes) -> int:
    from prompts_app.services import testsets

    preview = testsets.stage_upload(test_set, user=user, filename="bench.csv", content=data)
    assert preview.parsed.ok, preview.parsed.problems or preview.parsed.bad_rows[:3]
    return testsets.confirm_upload(preview.upload).cases  # (it returns Imported(cases, skipped) since 00e5abf)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    data = make_csv(rows)
    with tempfile.TemporaryDirectory() as directory:
        setup_django(directory)
        from django.contrib.auth import get_user_model

        from prompts_app.models import Membership, Role, Workspace
        from prompts_app.services import testsets

        user = get_user_model().objects.create_user("bench", password="x")
        workspace = Workspace(name="Bench", maxim_id="ws", base_url="https://maxim.test")
        workspace.set_api_key("bench-key")
        workspace.save()
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        timed = testsets.create_test_set(workspace=workspace, name="Timed", description="", user=user)
        traced = testsets.create_test_set(workspace=workspace, name="Traced", description="", user=user)

        started = time.perf_counter()
        imported = import_once(timed, user, data)
        seconds = time.perf_counter() - started
        assert imported == rows == timed.cases.count()

        tracemalloc.start()
        import_once(traced, user, data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak_mb = peak / (1024 * 1024)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {len(data) / (1024 * 1024):.1f} MB, {rows:,} rows")
    print(f"import (parse for preview + parse again + bulk insert): {seconds:.2f} s")
    print(f"peak traced Python memory during an import: {peak_mb:.1f} MB (process peak RSS {rss_mb:.0f} MB)")
    print(f"RESULT import_10k_seconds={seconds:.2f} peak_mb={peak_mb:.1f}")


if __name__ == "__main__":
    main()
