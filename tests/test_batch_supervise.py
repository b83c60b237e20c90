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


def test_when_one_command_dies_the_other_is_stopped_too():
    started = time.monotonic()
    code = supervise([SLEEPER, [sys.executable, "-c", "raise SystemExit(3)"]], grace=5)
    assert code == 3
    assert time.monotonic() - started < 10  # the sleeper did not hold the pair up


def test_ctrl_c_stops_both(tmp_path: Path):
    pids = tmp_path / "pids"
    child = [sys.executable, "-c", f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(60)"]
    supervisor = subprocess.Popen([sys.executable, "-m", "maximui.supervise", *child, SEPARATOR, *child])
    deadline = time.monotonic() + 10
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [int(pid) for pid in pids.read_text().split()]
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=15) == 0
    assert not any(alive(pid) for pid in children)
