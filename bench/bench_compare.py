"""How long does comparing 8 versions take next to running one?

    python bench/bench_compare.py

Standalone: a throwaway SQLite file, the FakeMaxim server answering each run after
1 s, and Django's test Client playing the browser (create the comparison, then poll
the comparison's watch, a stream of events pushing each column as it is stored, as the page does). Target: 8 columns take at most 1.15x one run.
Last line: RESULT compare8_s=<x> single_s=<y> ratio=<z>
"""

from __future__ import annotations

import os
import re
import sys
from html import unescape
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB_FILE = Path("/tmp/maximui-bench-compare.sqlite3")
RUN_DELAY = 1.0
COLUMNS = 8

sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "maximui.settings"
os.environ["MAXIMUI_TESTING"] = "1"
os.environ["DATABASE_URL"] = f"sqlite:///{DB_FILE}"
os.environ.setdefault("LOG_LEVEL", "WARNING")
for suffix in ("", "-wal", "-shm"):
    Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from devtools.maxim_server import FakeMaxim  # noqa: E402
from devtools.seeding import seed_versions  # noqa: E402
from prompts_app import runner  # noqa: E402
from prompts_app.models import Comparison  # noqa: E402
from prompts_app.services.runs import run_version  # noqa: E402
from tests.sse import EventStream  # noqa: E402

INPUT = {"turns": [{"role": "user", "content": "Where is my parcel?"}], "variables": {"company": "Acme"}}


def time_single(user, version) -> float:
    started = time.perf_counter()
    run = run_version(version=version, inputs=INPUT, user=user)  # what the run view calls
    elapsed = time.perf_counter() - started
    assert run.status == "success", run.error
    return elapsed


def time_comparison(client: Client, workspace, versions) -> tuple[float, list[tuple[int, float]]]:
    data = {
        "columns": [f"v{v.pk}" for v in versions],
        "shared_input": "on",
        "turn-TOTAL_FORMS": "1",
        "turn-INITIAL_FORMS": "1",
        "turn-0-role": "user",
        "turn-0-content": INPUT["turns"][0]["content"],
        "var__company": "Acme",
        "repeats": "1",
        "title": "bench",
    }
    started = time.perf_counter()
    response = client.post(reverse("comparison_new") + f"?workspace={workspace.pk}", data)
    assert response.status_code == 302, response.content[:500]
    page = client.get(response["Location"])
    assert page.status_code == 200
    comparison = Comparison.objects.latest("pk")
    positions = {c.pk: c.position for c in comparison.columns.all()}
    done: list[tuple[int, float]] = []
    html = page.content.decode()
    # As the page does: one stream of events (the watch) pushes each column as it is stored; its
    # "done" event brings the next watch, if anything is still pending.
    while match := re.search(r'id="compare-watch" hidden hx-ext="sse" sse-connect="([^"]+)"', html):
        stream, html = EventStream(client.get(unescape(match.group(1)))), ""
        while (event := stream.next()) is not None:
            name, data = event
            for column_id in re.findall(r'<article id="column-(\d+)"', data):
                done.append((positions[int(column_id)], time.perf_counter() - started))
            html = data if name == "done" else html
        if time.perf_counter() - started > 60:
            raise SystemExit("columns still pending after 60 s")
    return time.perf_counter() - started, done


def main() -> None:
    setup_test_environment()  # lets the test Client's "testserver" host in
    call_command("migrate", verbosity=0, interactive=False)
    with FakeMaxim(run_delay=RUN_DELAY) as fake:
        seeded = seed_versions(fake, columns=COLUMNS, system="You answer for {{company}}, reply style {n}")
        [user], workspace, versions = seeded.users, seeded.workspace, seeded.versions
        client = Client()
        client.force_login(user)
        time_single(user, versions[0])  # warm-up: connection pool, price tables
        client.get(reverse("comparison_list"))  # warm-up: middleware, URL resolver, templates
        single = time_single(user, versions[0])
        submitted = time.monotonic()
        compare8, order = time_comparison(client, workspace, versions)
        finished = time.monotonic()
        runner.wait(timeout=10)
        sent = fake.requests_to("/v1/prompts/run")[-COLUMNS:]
        arrivals = sorted(r.arrived for r in sent)
        last_answer = max(r.finished for r in sent)
        assert not fake.violations, fake.violations
    ratio = compare8 / single
    print(f"single run (dashboard service path): {single:.3f} s")
    print(f"comparison of {COLUMNS} versions, create -> all columns done: {compare8:.3f} s")
    print(f"submit -> first request at Maxim: {arrivals[0] - submitted:.3f} s")
    print(f"requests to Maxim arrived within {arrivals[-1] - arrivals[0]:.3f} s of each other")
    print(f"last answer -> last column on the page: {finished - last_answer:.3f} s")
    print("completion order (column position: seconds since submit):")
    for position, seconds in order:
        print(f"  column {position + 1}: {seconds:.3f} s")
    first, last = order[0][1], order[-1][1]
    print(f"first column's result available {last - first:.3f} s before the last one's")
    print(f"ratio {ratio:.3f} (target <= 1.15): {'OK' if ratio <= 1.15 else 'OVER TARGET'}")
    print(f"RESULT compare8_s={compare8:.3f} single_s={single:.3f} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
