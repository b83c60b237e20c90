"""Other pages under load: 16 comparisons of 8 columns (128 runs) at once on one server.

    python bench/bench_load.py

Standalone: a throwaway SQLite file in a temp dir, the FakeMaxim server answering each run
after 1 s, and gunicorn started as `make run` starts it (2 workers, the Makefile's thread
count, an access log). At the same moment:
  (a) 16 logged-in users (httpx, one session each) post the real new-comparison form (CSRF
      token, submit token, 8 columns) and follow the page the way its EventSource does: one
      watch stream at a time (server-sent events, each column and its diff rows pushed as it is
      stored), opened again with the address its "done" event brings, or after `retry` ms when
      the server said every held slot was taken, until no run is pending;
  (b) a prober, another user, asks for other pages (home, run history, a prompt page, costs)
      every 100 ms and records their latency.
Target (issue 11): the prober's p95 within 300 ms. Everything is bounded in time (about a
minute) and gunicorn is stopped even on failure.
Printed for reference: the same pages idle before and after the load (after it, the run history
lists the load's runs). Last line: RESULT load16x8 p95_ms=<p95> max_ms=<max> compare_done_median_s=<median>
"""

from __future__ import annotations

import html
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RUN_DELAY = 1.0
COMPARISONS, COLUMNS = 16, 8
PROBE_EVERY = 0.1
IDLE_PROBE_SECONDS = 2.0  # the same pages before the load, for reference
DEADLINE_SECONDS = 60.0  # the load phase; the whole script stays well under two minutes
TARGET_P95_MS = 300

TMP = Path(tempfile.mkdtemp(prefix="maximui-bench-load-"))
sys.path.insert(0, str(ROOT))
ENV = {
    "DJANGO_SETTINGS_MODULE": "maximui.settings",
    "MAXIMUI_TESTING": "1",
    "MAXIMUI_ENV_FILE": "",
    "DATABASE_URL": f"sqlite:///{TMP / 'db.sqlite3'}",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.urls import reverse  # noqa: E402

from devtools.maxim_server import FakeMaxim  # noqa: E402
from devtools.seeding import PASSWORD, seed_versions  # noqa: E402
from devtools.servers import THREADS, WORKERS, Gunicorn  # noqa: E402


class FormFields(HTMLParser):
    """The values a browser would submit from the form with id `form_id` (no buttons)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, []
        self._textarea: str | None = None
        self._select: int | None = None  # index in `fields` of the open <select>'s value

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "option" and self._select is not None:
            self._option(attrs)
        elif tag == "form":
            self.inside = a.get("id") == self.form_id
        elif not self.inside or "name" not in a or "disabled" in a:
            return
        elif tag == "input" and a.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "input" and "checked" in a:
            self.fields.append((a["name"], a.get("value") or "on"))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select" and "multiple" not in a:
            self._select = len(self.fields)
            self.fields.append((a["name"], None))

    def _option(self, attrs):
        """A select's value: its selected option, else its first."""
        name, value = self.fields[self._select]
        a = dict(attrs)
        if value is None or "selected" in a:
            self.fields[self._select] = (name, a.get("value", ""))

    def handle_data(self, data):
        if self._textarea is not None:
            self.fields[-1] = (self._textarea, self.fields[-1][1] + data)

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self.inside = False


def form_fields(page: str, form_id: str) -> list[tuple[str, str]]:
    parser = FormFields(form_id)
    parser.feed(page)
    return parser.fields


def login(base: str, username: str) -> httpx.Client:
    # Idle connections are dropped before gunicorn's 2 s keep-alive closes them (a browser
    # would retry a request that meets a connection closed under it; httpx does not).
    client = httpx.Client(
        base_url=base, timeout=httpx.Timeout(30.0, connect=5.0), limits=httpx.Limits(keepalive_expiry=1.0)
    )
    page = client.get(reverse("login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        reverse("login"), data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 302 and "sessionid" in client.cookies, f"login failed: {answer.status_code}"
    return client


WATCH = re.compile(r'<div id="compare-watch" hidden hx-ext="sse" sse-connect="([^"]+)"')
STREAM = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}  # what EventSource sends


def read_stream(client: httpx.Client, url: str) -> tuple[list[tuple[str, str]], int | None]:
    """One watch stream as the browser's EventSource reads it: its events (name, data) until the
    server ends it, and the `retry` ms it asked for, if any (then the browser opens it again)."""
    events, retry, name, data = [], None, "message", []
    with client.stream("GET", url, headers=STREAM) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if not line:
                if data:
                    events.append((name, "\n".join(data)))
                name, data = "message", []
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                retry = int(value)
    return events, retry


class Comparison:
    """One user opening a new comparison of 8 versions and watching it fill in, as the page does."""

    def __init__(self, n: int, client: httpx.Client, new_url: str, deadline: float) -> None:
        self.n, self.client, self.new_url, self.deadline = n, client, new_url, deadline
        self.clicked = 0.0
        self.opened_s: float | None = None  # click -> the comparison page received
        self.done_s: float | None = None
        self.watches = self.busy = self.updates = 0
        self.error: str | None = None
        page = client.get(new_url)
        fields = [(k, v) for k, v in form_fields(page.text, "compare-form") if not k.startswith("turn-0-content")]
        columns = [v for k, v in fields if k == "columns"]
        assert len(columns) == COLUMNS, f"the form offers {len(columns)} columns"
        self.post_url = html.unescape(
            re.search(r'<form method="post" action="([^"]+)" id="compare-form"', page.text).group(1)
        )
        self.data: dict[str, list[str]] = {}  # httpx takes repeated fields as lists
        for name, value in [*fields, ("turn-0-content", f"Where is my parcel? (user {n})"), ("action", "run")]:
            self.data.setdefault(name, []).append(value)

    def run(self, start: threading.Barrier) -> None:
        try:
            start.wait(timeout=30)
            self.clicked = clicked = time.monotonic()
            page = self.client.post(self.post_url, data=self.data, follow_redirects=True)
            self.opened_s = time.monotonic() - clicked
            if page.status_code != 200 or "/new/" in page.url.path:
                errors = re.findall(r'role="alert"[^>]*>(.*?)</', page.text, re.S)
                raise AssertionError(f"the form did not open a comparison: {page.status_code} {errors[:3]}")
            watch = WATCH.search(page.text)
            while watch:
                if time.monotonic() > self.deadline:
                    raise TimeoutError("still pending at the deadline")
                events, retry = read_stream(self.client, html.unescape(watch.group(1)))
                self.watches += 1
                self.updates += sum(1 for name, _ in events if name == "update")
                done = [data for name, data in events if name == "done"]
                if done:  # the next watch, or none when nothing is pending
                    watch = WATCH.search(done[-1])
                elif retry is not None:  # every held slot taken: the browser opens the same stream again
                    self.busy += 1
                    time.sleep(retry / 1000)
                else:
                    raise AssertionError("a watch stream ended with neither 'done' nor 'retry'")
            self.done_s = time.monotonic() - clicked
        except Exception as exc:  # noqa: BLE001 - reported in the summary, never hangs the bench
            self.error = f"{type(exc).__name__}: {exc}"


class Prober:
    """Another user opening other pages every PROBE_EVERY seconds, one at a time."""

    def __init__(self, client: httpx.Client, urls: list[str]) -> None:
        self.client, self.urls = client, urls
        self.samples: list[tuple[str, float, int]] = []  # (url, seconds, status)
        self.started: list[float] = []  # when each sample was asked for (monotonic)
        self.stopped = threading.Event()

    def run(self, start: threading.Barrier | None = None, seconds: float | None = None) -> None:
        if start is not None:
            start.wait(timeout=30)
        until = time.monotonic() + seconds if seconds is not None else float("inf")
        tick, k = time.monotonic(), 0
        while not self.stopped.is_set() and time.monotonic() < until:
            url = self.urls[k % len(self.urls)]
            k += 1
            began = time.monotonic()
            try:
                status = self.client.get(url).status_code
            except httpx.HTTPError:
                status = 0
            self.samples.append((url, time.monotonic() - began, status))
            self.started.append(began)
            tick += PROBE_EVERY
            self.stopped.wait(max(0.0, tick - time.monotonic()))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_line(samples: list[tuple[str, float, int]]) -> str:
    ms = [s[1] * 1000 for s in samples]
    return (
        f"p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms, {len(ms)} requests"
    )


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    log_path = TMP / "gunicorn.log"
    with FakeMaxim(run_delay=RUN_DELAY) as fake, open(log_path, "wb") as log:
        seeded = seed_versions(fake, columns=COLUMNS, usernames=tuple(f"load{n}" for n in range(COMPARISONS + 1)))
        users, workspace, prompt, versions = seeded.users, seeded.workspace, seeded.prompt, seeded.versions
        server = Gunicorn(env=os.environ, log=log, access_log=True).start()
        base = server.base_url
        clients: list[httpx.Client] = []
        try:
            probe_urls = [
                reverse("home"),
                reverse("run_history"),
                reverse("prompt_detail", args=[prompt.pk]),
                reverse("cost_review"),
            ]
            prober_client = login(base, users[-1].username)
            clients.append(prober_client)
            for url in probe_urls:  # warm both the pages and (by repetition) both workers
                for _ in range(3):
                    assert prober_client.get(url).status_code == 200, url
            idle = Prober(prober_client, probe_urls)
            idle.run(seconds=IDLE_PROBE_SECONDS)

            new_url = (
                reverse("comparison_new")
                + f"?workspace={workspace.pk}&"
                + "&".join(f"columns=v{v.pk}" for v in versions)
            )
            deadline = time.monotonic() + DEADLINE_SECONDS
            comparisons = []
            for n in range(COMPARISONS):
                clients.append(login(base, users[n].username))
                comparisons.append(Comparison(n, clients[-1], new_url, deadline))
            prober = Prober(prober_client, probe_urls)
            start = threading.Barrier(COMPARISONS + 1)
            sent_before = len(fake.requests_to("/v1/prompts/run"))
            cpu_before, load_began = server.cpu_seconds(), time.monotonic()
            threads = [threading.Thread(target=c.run, args=(start,), daemon=True) for c in comparisons]
            for t in threads:
                t.start()
            probing = threading.Thread(target=prober.run, args=(start,), daemon=True)
            probing.start()
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()) + 35)
            prober.stopped.set()
            probing.join(timeout=35)
            cpu_used, load_took = server.cpu_seconds() - cpu_before, time.monotonic() - load_began
            # The same pages once the load is over, now with its 128 runs in the history: what
            # the pages cost by themselves on this machine at this moment.
            after = Prober(prober_client, probe_urls)
            after.run(seconds=IDLE_PROBE_SECONDS)
        finally:
            for client in clients:
                client.close()
            server.stop()
        runs = fake.requests_to("/v1/prompts/run")[sent_before:]
        assert not fake.violations, fake.violations

    access = log_path.read_text(errors="replace")
    errors_5xx = len(re.findall(r'" 5\d\d ', access))
    shutil.rmtree(TMP, ignore_errors=True)

    done = [c.done_s for c in comparisons if c.done_s is not None]
    failed = [f"#{c.n}: {c.error}" for c in comparisons if c.error]
    under_load = prober.samples
    print(
        f"gunicorn: {WORKERS} workers x {THREADS} threads; Maxim answers after {RUN_DELAY} s; "
        f"{COMPARISONS} comparisons x {COLUMNS} columns; {len(runs)} runs reached Maxim"
    )
    if done:
        print(
            f"comparisons, click -> all runs shown: median {statistics.median(done):.2f} s, "
            f"min {min(done):.2f} s, max {max(done):.2f} s ({len(done)}/{COMPARISONS} done)"
        )
    for line in failed:
        print(f"  FAILED {line}")
    if runs and done:
        t0 = min(c.clicked for c in comparisons)
        arrived = sorted(r.arrived - t0 for r in runs)
        answered = sorted(r.finished - t0 for r in runs if r.finished)
        opened = [c.opened_s for c in comparisons if c.opened_s is not None]
        print(
            f"phases from the clicks: pages opened median {statistics.median(opened):.2f} s, max {max(opened):.2f} s; "
            f"Maxim requests arrived {arrived[0]:.2f} .. {statistics.median(arrived):.2f} .. {arrived[-1]:.2f} s; "
            f"last answer {answered[-1]:.2f} s; last comparison shown {max(c.clicked + c.done_s for c in comparisons if c.done_s) - t0:.2f} s"
        )
    print(
        f"gunicorn used {cpu_used:.1f} CPU s in {load_took:.1f} s of load ({cpu_used / load_took:.2f} cores of 2; "
        f"load average now {os.getloadavg()[0]:.1f})"
    )
    watches = sum(c.watches for c in comparisons)
    busy = sum(c.busy for c in comparisons)
    print(
        f"watch streams: {watches}, of which 'busy, retry later' (all held slots taken): {busy}; "
        f"updates pushed: {sum(c.updates for c in comparisons)}"
    )
    print(f"other pages idle:       {latency_line(idle.samples)}")
    print(f"  idle after the load:   {latency_line(after.samples)}")
    for url in probe_urls:
        mine = [s for s in after.samples if s[0] == url]
        if mine:
            print(f"    {url:<22} {latency_line(mine)}")
    if done:  # where the slow ones fall: while the comparisons are being opened, or while they fill in
        opened_by = max(c.clicked + c.opened_s for c in comparisons if c.opened_s is not None)
        opening = [s for s, at in zip(under_load, prober.started) if at < opened_by]
        filling = [s for s, at in zip(under_load, prober.started) if at >= opened_by]
        for name, part in (("while pages open", opening), ("while they fill in", filling)):
            if part:
                print(f"  {name + ':':<22} {latency_line(part)}")
    print(f"other pages under load: {latency_line(under_load)}")
    for url in probe_urls:
        mine = [s for s in under_load if s[0] == url]
        if mine:
            print(f"  {url:<24} {latency_line(mine)}")
    bad = [s for s in under_load if s[2] != 200]
    print(f"non-200 answers to the prober: {len(bad)}; 5xx in the access log: {errors_5xx}")
    ms = [s[1] * 1000 for s in under_load]
    p95, worst = percentile(ms, 0.95), max(ms)
    print(f"p95 {p95:.0f} ms (target <= {TARGET_P95_MS}): {'OK' if p95 <= TARGET_P95_MS else 'OVER TARGET'}")
    median_done = statistics.median(done) if done else float("nan")
    print(f"RESULT load16x8 p95_ms={p95:.0f} max_ms={worst:.0f} compare_done_median_s={median_done:.2f}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
