"""Click-to-visible in a real browser: one run against a comparison of 8 versions.

    python bench/bench_browser_compare.py

Standalone: a throwaway SQLite file, the FakeMaxim server answering each run after 1 s,
gunicorn with 2 workers and the thread count of `make run`, and Debian's Chromium driven by
Playwright. Single runs and comparisons alternate in one session (paired), so the ratio holds
on a busy machine even when absolute times do not. Targets: ratio <= 1.15, and the first column
visible within 0.1 s of Maxim's answer to it.
Last line: RESULT single_s=<x> compare8_s=<y> first_column_s=<z> first_after_answer_s=<w> ratio=<r>
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB_FILE = Path("/tmp/maximui-bench-browser.sqlite3")
RUN_DELAY = 1.0
COLUMNS = 8
SINGLES, COMPARISONS = 5, 3

sys.path.insert(0, str(ROOT))
ENV = {
    "DJANGO_SETTINGS_MODULE": "maximui.settings",
    "MAXIMUI_TESTING": "1",
    "DATABASE_URL": f"sqlite:///{DB_FILE}",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)
for suffix in ("", "-wal", "-shm"):
    Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.urls import reverse  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from devtools.maxim_server import FakeMaxim  # noqa: E402
from devtools.seeding import PASSWORD, seed_versions  # noqa: E402
from devtools.servers import THREADS, WORKERS, Gunicorn  # noqa: E402


def login(page, base: str) -> None:
    page.goto(base + reverse("login"))
    page.fill("input[name=username]", "bench")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state("networkidle")


def watch(page, *watched: tuple[str, int]) -> None:
    """Have the page note when each selector first matches 1 ... count elements (bench/js/marks.js)."""
    page.evaluate("w => sessionStorage.setItem('benchWatch', JSON.stringify(w))", [list(w) for w in watched])


def marks(page) -> tuple[float, dict[str, list[float]]]:
    """The press and the frames noted by the page, as time.monotonic() values."""
    pressed, seen = page.evaluate(
        "() => [JSON.parse(sessionStorage.getItem('benchPressed')), JSON.parse(sessionStorage.getItem('benchSeen'))]"
    )
    offset = time.time() - time.monotonic()  # the page's clock is the wall clock; the fake's is monotonic
    return pressed / 1000 - offset, {k: [t / 1000 - offset for t in v] for k, v in seen.items()}


def time_single(page, base: str, version, fake: FakeMaxim) -> tuple[float, float, float]:
    """(press -> output visible, press -> the request at Maxim, its answer -> visible)."""
    page.goto(f"{base}/versions/{version.pk}/run/")
    page.wait_for_load_state("networkidle")
    if page.locator("#id_turn-0-content").count():
        page.fill("#id_turn-0-content", "Where is my parcel?")
    if page.locator("input[name=var__company]").count():
        page.fill("input[name=var__company]", "Acme")
    result = "#run-result .badge.success"
    watch(page, (result, 1))
    sent_before = len(fake.requests_to("/v1/prompts/run"))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector(result, timeout=30_000)
    pressed, seen = _wait_for_marks(page, result, 1)
    [request] = fake.requests_to("/v1/prompts/run")[sent_before:]
    return seen[result][0] - pressed, request.arrived - pressed, seen[result][0] - request.finished


def time_comparison(page, base: str, workspace, versions, fake: FakeMaxim) -> tuple[float, float, float, float, float]:
    """(press -> all visible, press -> first visible, first visible - first answer, press -> first request,
    last visible - last answer), timed by the page itself from the press to the frame that shows it."""
    columns = "&".join(f"columns=v{v.pk}" for v in versions)
    page.goto(f"{base}/compare/new/?workspace={workspace.pk}&{columns}")
    page.wait_for_load_state("networkidle")
    page.fill("#id_turn-0-content", "Where is my parcel?")
    if page.locator("#compare-inputs input[name=var__company]").count():
        page.fill("#compare-inputs input[name=var__company]", "Acme")
    sent_before = len(fake.requests_to("/v1/prompts/run"))
    outputs = ".compare-column pre.output"
    watch(page, (outputs, len(versions)))
    page.get_by_role("button", name="Run comparison").click()
    page.locator(outputs).nth(len(versions) - 1).wait_for(timeout=30_000)
    pressed, seen = _wait_for_marks(page, outputs, len(versions))
    first, done = seen[outputs][0], seen[outputs][-1]
    requests = fake.requests_to("/v1/prompts/run")[sent_before:]
    answers = sorted(r.finished for r in requests if r.finished)
    first_sent = min(r.arrived for r in requests)
    return done - pressed, first - pressed, first - answers[0], first_sent - pressed, done - answers[-1]


def _wait_for_marks(page, selector: str, count: int) -> tuple[float, dict[str, list[float]]]:
    """The page's notes, once the frame that showed the last element has been noted (a frame or two)."""
    for _ in range(100):
        pressed, seen = marks(page)
        if len(seen.get(selector, [])) >= count:
            return pressed, seen
        page.wait_for_timeout(10)
    raise AssertionError(f"the page noted no frame showing {count} x {selector}")


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    with FakeMaxim(run_delay=RUN_DELAY) as fake:
        seeded = seed_versions(fake, columns=COLUMNS)
        workspace, versions = seeded.workspace, seeded.versions
        with Gunicorn(env=os.environ) as server, sync_playwright() as p:
            base = server.base_url
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.add_init_script(path=str(ROOT / "bench/js/marks.js"))
            login(page, base)
            time_single(page, base, versions[0], fake)  # warm-up: both workers, pools, templates
            time_comparison(page, base, workspace, versions, fake)
            singles, comparisons = [], []
            for n in range(SINGLES):  # paired: a comparison between singles, same conditions
                singles.append(time_single(page, base, versions[0], fake))
                if n < COMPARISONS:
                    comparisons.append(time_comparison(page, base, workspace, versions, fake))
            browser.close()
        assert not fake.violations, fake.violations
    single = statistics.median(s[0] for s in singles)
    compare8 = statistics.median(c[0] for c in comparisons)
    first = statistics.median(c[1] for c in comparisons)
    after_answer = statistics.median(c[2] for c in comparisons)
    to_send = statistics.median(c[3] for c in comparisons)
    last_after = statistics.median(c[4] for c in comparisons)
    ratio = compare8 / single
    print(f"gunicorn: {WORKERS} workers x {THREADS} threads; Maxim answers after {RUN_DELAY} s")
    print(
        "single runs, press -> output visible: "
        + ", ".join(f"{s[0]:.3f}" for s in singles)
        + f" s (median {single:.3f}); "
        f"press -> its request at Maxim: median {statistics.median(s[1] for s in singles):.3f} s; "
        f"answer -> visible: median {statistics.median(s[2] for s in singles):.3f} s"
    )
    print(
        f"comparisons of {COLUMNS}, press -> all visible: "
        + ", ".join(f"{c[0]:.3f}" for c in comparisons)
        + f" s (median {compare8:.3f})"
    )
    print(f"press -> first Maxim request: median {to_send:.3f} s")
    print(f"last answer -> last column visible: median {last_after:.3f} s")
    print(
        f"press -> first column visible: median {first:.3f} s; {after_answer:.3f} s after its answer "
        f"(target <= 0.1): {'OK' if after_answer <= 0.1 else 'OVER TARGET'}"
    )
    print(f"ratio {ratio:.3f} (target <= 1.15): {'OK' if ratio <= 1.15 else 'OVER TARGET'}")
    print(
        f"RESULT single_s={single:.3f} compare8_s={compare8:.3f} first_column_s={first:.3f} "
        f"first_after_answer_s={after_answer:.3f} ratio={ratio:.3f}"
    )


if __name__ == "__main__":
    main()
