"""Running a real scheduler (in a thread or its own process) against a real SQLite file, for tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbflow.configuration import load_config
from nbflow.runtime import api

SCHEDULER_SCRIPT = """
import signal, sys
from nbflow.configuration import load_config
from nbflow.runtime import api
env = api.Environment.from_config(load_config())
scheduler = api.make_scheduler(env, executor=sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
scheduler.run(until_idle=sys.argv[2] == "idle")
"""


def make_env() -> api.Environment:
    env = api.Environment.from_config(load_config())
    api.init_database(env)
    return env


def run_scheduler_until_idle(env: api.Environment, *, executor: str = "local") -> Any:
    scheduler = api.make_scheduler(env, executor=executor)
    scheduler.run(until_idle=True)
    return scheduler


def start_scheduler_process(*, executor: str = "local", until_idle: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SCHEDULER_SCRIPT, executor, "idle" if until_idle else "forever"],
                            env=dict(os.environ), start_new_session=True)


def start_nbflow_scheduler(stderr: Path) -> subprocess.Popen[bytes]:
    """`nbflow scheduler` as a user starts it, in its own session, its log (stderr) written to `stderr`."""
    with stderr.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "nbflow.cli.main", "scheduler"], stdout=subprocess.DEVNULL,
                                stderr=out, start_new_session=True)


def stop_scheduler(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then a bounded wait (60 s) before SIGKILL: a test never leaves its scheduler running."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll until condition() is truthy; its value, or AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def in_thread(fn: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
