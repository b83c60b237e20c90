"""Run several commands as one: `make run` starts gunicorn and the task worker with it.

    python -m maximui.supervise gunicorn maximui.wsgi ... ::: python manage.py db_worker

The first command is the web server; the others are workers. A worker that exits on its own
(e.g. "database is locked" after a long write) is started again after a backoff (BACKOFF_SECONDS,
doubling up to MAX_BACKOFF_SECONDS, back to the start once it has run STABLE_SECONDS), with a
line on stderr saying why: the dashboard stays up and batches go on. Everything is stopped only
on Ctrl+C / SIGTERM (exit 0) or when the web server itself exits (its exit code, or 1).
Each is asked to stop (SIGTERM) and killed if it has not after STOP_GRACE_SECONDS: the worker
finishes its current task slice first (MAXIMUI_BATCH_SLICE_SECONDS), and anything it had in
flight is settled by the next start without being sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SEPARATOR = ":::"
STOP_GRACE_SECONDS = 40.0
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0


def split_commands(argv: list[str]) -> list[list[str]]:
    commands, current = [], []
    for arg in argv:
        if arg == SEPARATOR:
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)
    return [command for command in commands if command]


def stop_all(children: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def supervise(
    commands: list[list[str]],
    *,
    grace: float = STOP_GRACE_SECONDS,
    backoff: float = BACKOFF_SECONDS,
    max_backoff: float = MAX_BACKOFF_SECONDS,
) -> int:
    """Start every command; restart workers that exit; return when the web server (the first) stops."""
    stopping: list[int] = []

    def on_signal(signum, frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Each child in its own process group: a terminal's Ctrl+C reaches only this supervisor,
    # which then stops the children in order instead of all of them racing.
    children = [subprocess.Popen(command, start_new_session=True) for command in commands]
    workers = [_Restarts(backoff) for _ in commands]
    code = 0
    try:
        while not stopping:
            web = children[0]
            if web.poll() is not None:
                code = web.returncode or 1  # the web server stopping on its own is a failure
                _say(f"{web.args[0]} exited ({web.returncode}); stopping the rest")
                break
            for index in range(1, len(children)):
                if workers[index].due(children[index], max_backoff):
                    children[index] = subprocess.Popen(commands[index], start_new_session=True)
                    workers[index].started = time.monotonic()
            time.sleep(0.2)
    finally:
        stop_all(children, grace)
    return code


class _Restarts:
    """When to start an exited worker again: after a delay that doubles while it keeps failing."""

    def __init__(self, backoff: float) -> None:
        self.first, self.delay = backoff, backoff
        self.started, self.restart_at = time.monotonic(), None

    def due(self, child: subprocess.Popen, max_backoff: float) -> bool:
        now = time.monotonic()
        if self.restart_at is None:
            if child.poll() is None:
                return False
            if now - self.started >= STABLE_SECONDS:
                self.delay = self.first  # it ran fine for a while: this is a new failure
            _say(f"{child.args[0]} exited ({child.returncode}); restarting it in {self.delay:g} s")
            self.restart_at, self.delay = now + self.delay, min(self.delay * 2, max_backoff)
            return False
        if now < self.restart_at:
            return False
        self.restart_at = None
        return True


def _say(message: str) -> None:
    print(f"supervise: {message}", file=sys.stderr, flush=True)


def main() -> None:
    commands = split_commands(sys.argv[1:])
    if len(commands) < 1:
        sys.exit(f"usage: python -m maximui.supervise COMMAND {SEPARATOR} COMMAND ...")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(supervise(commands))


if __name__ == "__main__":
    main()
