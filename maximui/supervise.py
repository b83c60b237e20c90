"""Run several commands as one: `make run` starts gunicorn and the task worker with it.

    python -m maximui.supervise gunicorn maximui.wsgi ... ::: python manage.py db_worker

Ctrl+C (or SIGTERM) stops every command; when one command exits on its own, the others are
stopped too, so a dead worker never leaves a web server that accepts batches nobody runs.
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


def supervise(commands: list[list[str]], *, grace: float = STOP_GRACE_SECONDS) -> int:
    """Start every command; return the exit code of the first one to stop (0 after a signal)."""
    stopping: list[int] = []

    def on_signal(signum, frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Each child in its own process group: a terminal's Ctrl+C reaches only this supervisor,
    # which then stops the children in order instead of all of them racing.
    children = [subprocess.Popen(command, start_new_session=True) for command in commands]
    code = 0
    try:
        while not stopping:
            ended = [child for child in children if child.poll() is not None]
            if ended:
                code = ended[0].returncode or 1  # one stopping on its own is a failure of the pair
                print(f"supervise: {ended[0].args[0]} exited ({ended[0].returncode}); stopping the rest",
                      file=sys.stderr, flush=True)  # fmt: skip
                break
            time.sleep(0.2)
    finally:
        stop_all(children, grace)
    return code


def main() -> None:
    commands = split_commands(sys.argv[1:])
    if len(commands) < 1:
        sys.exit(f"usage: python -m maximui.supervise COMMAND {SEPARATOR} COMMAND ...")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(supervise(commands))


if __name__ == "__main__":
    main()
