"""History, totals, text search and the 30-day cost review at 10,000 and 1,000,000 runs.

Each size runs in its own process (Django binds to one database per process); the
view is timed through Django's test Client with a logged-in user, SQL counted with
CaptureQueriesContext. Targets: <= 50 ms median and <= 10 queries at 1M runs,
<= 1.5x the 10k time; text search <= 300 ms (the page, and separately each request that
brings its totals). A common word's totals come in steps (history.totals_step): the figures
are per request, and the time to the whole totals is printed apart, after checking they
equal the totals summed in one go. The targets are wall-clock medians; the CPU time the process spent
(Django and SQLite both run in it) is printed beside them, since on a shared machine the
wall clock also counts the time other processes held the cores.

    python bench/bench_history.py            # both sizes, then the RESULT line
    python bench/bench_history.py --runs N   # one size (what the parent calls)
"""

from __future__ import annotations

import argparse
import gc
import html
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SIZES = (10_000, 1_000_000)
REPEATS = 21
CASES = (
    "first_page",
    "workspace_model",
    "deep_10k",
    "costs_30d",
    "text_search",
    "text_common",
    "text_search_totals",
    "text_common_totals",
)
TEXT_CASES = ("text_search", "text_common", "text_search_totals", "text_common_totals")


def measure_one_size(n: int) -> dict:
    import seed

    seed.ensure(n)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from prompts_app.models import Run
    from prompts_app.selectors import history
    from prompts_app.selectors.history import Cursor

    gc.freeze()  # as maximui/wsgi.py does once the app is loaded (the server does not import it here: it starts the runner)
    # Not setup_test_environment(): its template instrumentation would dominate the timings.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    user = get_user_model().objects.get(username=seed.BENCH_USER)
    client.force_login(user)
    ws, model = Run.objects.filter(model_name="gpt-4o-mini").values_list("workspace_id", "model_name").first()
    depth = min(10_000, n - 50)
    deep = Run.objects.order_by("-created_at", "-id").values("created_at", "id")[depth - 1]
    urls = {
        "first_page": "/runs/",
        "workspace_model": f"/runs/?workspace={ws}&model={model}",
        "deep_10k": f"/runs/?before={Cursor.of(deep).encode()}",
        "costs_30d": "/costs/",
        "text_search": f"/runs/?q={seed.RARE_WORD}",  # a word in ~0.5% of runs
        "text_common": "/runs/?q=order",  # a word in ~36% of runs: the worst case
        # a text search's totals come in a second request (hx-trigger="load")
        "text_search_totals": f"/runs/totals/?q={seed.RARE_WORD}",
        "text_common_totals": "/runs/totals/?q=order",
        # the same totals summed in one request, as before they came in steps: paired with the steps' whole time
        "text_common_totals_one_go": "/runs/totals/?q=order",
    }
    results = {}
    budget = history.TOTALS_BUDGET
    for name, url in urls.items():
        history.TOTALS_BUDGET = None if name.endswith("_one_go") else budget
        times, cpu_times, queries, chains, chain_cpus, steps = [], [], 0, [], [], 0
        for i in range(REPEATS + 2):
            chain, chain_cpu, steps, next_url = 0.0, 0.0, 0, url
            while next_url:  # a text search's totals may come in steps: follow them to the whole totals
                with CaptureQueriesContext(connection) as captured:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    # the totals are asked for by htmx (hx-trigger="load"): the fragment, not a page
                    response = client.get(next_url, headers={"HX-Request": "true"} if "/totals/" in url else {})
                    elapsed = (time.perf_counter() - started) * 1000
                    cpu = (time.process_time() - cpu_started) * 1000
                assert response.status_code == 200, (next_url, response.status_code)
                assert b'id="history-totals"' in response.content or b'id="cost-report"' in response.content, url
                assert b"No runs shown" not in response.content, url
                if i >= 2:  # the first two warm the caches, as a running server would be
                    times.append(elapsed)
                    cpu_times.append(cpu)
                chain, chain_cpu, steps = chain + elapsed, chain_cpu + cpu, steps + 1
                queries = max(queries, len(captured))
                next_url = _next_step(response)
            if i >= 2:
                chains.append(chain)
                chain_cpus.append(chain_cpu)
        results[name] = {
            "median_ms": round(statistics.median(times), 2),
            "max_ms": round(max(times), 2),
            "cpu_ms": round(statistics.median(cpu_times), 2),
            "queries": queries,
            "steps": steps,
            "whole_ms": round(statistics.median(chains), 2),
            "whole_cpu_ms": round(statistics.median(chain_cpus), 2),
        }
        if name.endswith("_totals"):
            _check_same_as_one_go(response, user, url)
    return results


NEXT_STEP = re.compile(r'id="history-totals" class="totals" hx-get="([^"]*so_far=[^"]*)"')
FIGURES = re.compile(
    r'<p id="history-totals" class="totals">\s*<strong>([\d,]+)</strong> runs ·\s*<strong>([\d,]+)</strong> tokens'
)


def _next_step(response) -> str | None:
    """The URL of the next step of the totals, if this answer is not the whole of them."""
    found = NEXT_STEP.search(response.content.decode())
    return html.unescape(found[1]) if found else None


def _check_same_as_one_go(response, user, url: str) -> None:
    """The totals reached in steps show what history.totals sums in one go."""
    from prompts_app.selectors import history
    from prompts_app.templatetags.runs import usd

    one_go = history.totals(history.RunFilter(history.scope_for_user(user).workspace_ids, q=url.split("q=")[1]))
    page = response.content.decode()
    runs, tokens = (int(x.replace(",", "")) for x in FIGURES.search(page).groups())
    assert (runs, tokens) == (one_go.runs, one_go.total_tokens), (url, runs, tokens, one_go)
    assert f"<strong>{usd(one_go.cost_nano)}</strong>" in page and f"+ {one_go.unpriced_runs:,} unpriced" in page, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    if args.runs:
        print(json.dumps(measure_one_size(args.runs)))
        return
    figures = {}
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, "--runs", str(n)], capture_output=True, text=True, check=True)
        figures[n] = json.loads(out.stdout.strip().splitlines()[-1])
    small, big = figures[SIZES[0]], figures[SIZES[1]]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after the run: {load} ({os.cpu_count()} cores)")
    print(f"{'case':<20}{'10k ms':>10}{'1M ms':>10}{'1M CPU':>8}{'ratio':>8}{'SQL 1M':>8}  target")
    result = []
    ok = True
    for case in CASES:
        ratio = big[case]["median_ms"] / small[case]["median_ms"]
        limit = 300 if case in TEXT_CASES else 50
        passed = big[case]["median_ms"] <= limit and big[case]["queries"] <= 10 and (case in TEXT_CASES or ratio <= 1.5)
        ok &= passed
        target = f"<= {limit} ms" + ("" if case in TEXT_CASES else ", <= 1.5x") + ", <= 10 SQL"
        print(
            f"{case:<20}{small[case]['median_ms']:>10.1f}{big[case]['median_ms']:>10.1f}{big[case]['cpu_ms']:>8.1f}{ratio:>8.2f}"
            f"{big[case]['queries']:>8}  {target} {'ok' if passed else 'MISSED'}"
        )
        result += [
            f"{case}_ms={big[case]['median_ms']}",
            f"{case}_cpu_ms={big[case]['cpu_ms']}",
            f"{case}_ratio={ratio:.2f}",
            f"{case}_sql={big[case]['queries']}",
        ]
    for case in TEXT_CASES:
        if case.endswith("_totals"):
            whole = big[case]
            print(
                f"{case}: whole totals in {whole['steps']} request(s), {whole['whole_ms']:.1f} ms "
                f"({whole['whole_cpu_ms']:.1f} ms CPU); each request above; equal to the totals summed in one go"
            )
            result += [
                f"{case}_steps={whole['steps']}",
                f"{case}_whole_ms={whole['whole_ms']}",
                f"{case}_whole_cpu_ms={whole['whole_cpu_ms']}",
            ]
    one_go = big["text_common_totals_one_go"]
    print(
        f"text_common_totals in one request, as before the steps: {one_go['median_ms']:.1f} ms ({one_go['cpu_ms']:.1f} ms CPU)"
    )
    result += [
        f"text_common_totals_one_go_ms={one_go['median_ms']}",
        f"text_common_totals_one_go_cpu_ms={one_go['cpu_ms']}",
    ]
    print("RESULT " + " ".join(result) + f" load_avg={load.replace(' ', '/')} all_targets_met={ok}")


if __name__ == "__main__":
    main()
