"""Start and stop the servers a benchmark measures: gunicorn as `make run` starts it, on a free port.

    with Gunicorn(env=os.environ) as server:
        httpx.get(server.base_url + "/")

The fake Maxim server (devtools.maxim_server.FakeMaxim) starts in-process, with its latency as
`run_delay`, and is ready when its `with` block begins.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def _make_run_option(name: str) -> int:
    # Read from the Makefile, so a bench measures the server people run, not a copy of its flags.
    return int(re.search(rf"--{name} (\d+)", (ROOT / "Makefile").read_text()).group(1))


WORKERS, THREADS, TIMEOUT = (_make_run_option(name) for name in ("workers", "threads", "timeout"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn:
    """maximui under gunicorn with `make run`'s workers, threads and timeout, in its own process group."""

    def __init__(self, *, env: Mapping[str, str], log: IO[bytes] | None = None, access_log: bool = False) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self._env, self._log, self._access_log = dict(env), log, access_log
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        command = [
            str(ROOT / ".venv/bin/gunicorn"),
            "maximui.wsgi",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--timeout",
            str(TIMEOUT),
        ]
        if self._access_log:
            command += ["--access-logfile", "-"]
        output = {"stdout": self._log, "stderr": subprocess.STDOUT} if self._log else {}
        # Its own session: stop() signals the arbiter and its workers together, never anything else.
        self.process = subprocess.Popen(command, cwd=ROOT, env=self._env, start_new_session=True, **output)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=0.1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        server = self.process
        if server is None or server.poll() is not None:
            return
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the arbiter and its workers (Linux /proc)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if self.process.pid in (pid, ppid):
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
