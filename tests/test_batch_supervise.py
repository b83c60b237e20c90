"""`make run`'s supervisor: the web server and the task worker start and stop together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from maximui.supervise import SEPARATOR, split_commands, supervise

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_commands_are_split_on_the_separator():
    assert split_commands(["a", "-x", SEPARATOR, "b"]) == [["a", "-x"], ["b"]]


def test_when_the_web_server_dies_the_worker_is_stopped_too():
    started = time.monotonic()
    code = supervise([[sys.executable, "-c", "raise SystemExit(3)"], SLEEPER], grace=5)
    assert code == 3
    assert time.monotonic() - started < 10  # the sleeper did not hold the pair up


def test_a_worker_that_exits_is_restarted_and_the_web_server_keeps_running(tmp_path: Path, capfd):
    starts = tmp_path / "starts"
    # The worker dies at once every time ("database is locked"); the web server lives until it
    # has seen the worker start three times (or 20 s), then exits 0.
    worker = [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"]
    web = [
        sys.executable,
        "-c",
        (
            "import os, time\n"
            f"deadline = time.monotonic() + 20\n"
            f"while time.monotonic() < deadline and (not os.path.exists({str(starts)!r}) "
            f"or len(open({str(starts)!r}).read()) < 3): time.sleep(0.05)\n"
            "raise SystemExit(7)"
        ),
    ]
    started = time.monotonic()
    code = supervise([web, worker], grace=5, backoff=0.1, max_backoff=0.4)
    assert code == 7  # the web server decided when to stop, not the dying worker
    assert len(starts.read_text()) >= 3 and time.monotonic() - started < 15
    assert "exited (1); restarting it in 0.1 s" in capfd.readouterr().err


def test_ctrl_c_stops_both(tmp_path: Path):
    pids = tmp_path / "pids"
    child = [
        sys.executable,
        "-c",
        f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(60)",
    ]
    supervisor = subprocess.Popen([sys.executable, "-m", "maximui.supervise", *child, SEPARATOR, *child])
    deadline = time.monotonic() + 10
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [int(pid) for pid in pids.read_text().split()]
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=15) == 0
    assert not any(alive(pid) for pid in children)
