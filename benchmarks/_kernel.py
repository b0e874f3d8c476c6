"""A real ipykernel for the notebook benchmarks, driven at the message level with jupyter_client.

Its iopub channel is drained by a thread that hands every message to the listeners (widget updates
arrive there as `comm_msg`s, time-stamped on arrival); the shell channel stays with the caller, so a
round trip is measured from send to `execute_reply` with nothing else on that socket.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._util import REPO, python_env

Listener = Callable[[dict[str, Any], float], None]  # (message, perf_counter at arrival)

NBFLOW_TOML = ('home = ".nbflow"\n[core]\ndags_folder = "dags"\n'
               "dags_are_paused_at_creation = false\n")


def nbflow_folder(folder: Path) -> Path:
    """`folder` set up as an nbflow project: an nbflow.toml (home and dags inside it), empty dags/."""
    (folder / "dags").mkdir(parents=True, exist_ok=True)
    (folder / "nbflow.toml").write_text(NBFLOW_TOML, encoding="utf-8")
    return folder


def kernel_env() -> dict[str, str]:
    """The benchmark's environment for the kernel: this checkout first on the path, no NBFLOW_* of the caller."""
    env = {name: value for name, value in python_env().items() if not name.startswith("NBFLOW")}
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Kernel:
    """A python3 kernel started in `cwd`; `execute` runs a cell and raises on error, `round_trip` times one."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=kernel_env())
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.listeners: list[Listener] = []
        self._outputs: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._drain = threading.Thread(target=self._drain_iopub, name="iopub", daemon=True)
        self._drain.start()

    def _drain_iopub(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:  # noqa: BLE001 - channels closed at shutdown
                return
            arrived = time.perf_counter()
            parent = msg.get("parent_header", {}).get("msg_id")
            kind, content = msg["msg_type"], msg["content"]
            if parent in self._outputs:
                if kind == "stream":
                    self._outputs[parent].append(content["text"])
                elif kind == "error":
                    self._outputs[parent].append("\n".join(content["traceback"]))
            for listener in list(self.listeners):
                listener(msg, arrived)

    def execute(self, code: str, timeout: float = 120) -> str:
        """Run a cell to its end; what it printed. Raises RuntimeError when the cell failed."""
        msg_id = self.kc.execute(code, store_history=False)
        self._outputs[msg_id] = []
        reply = self._reply(msg_id, timeout)
        time.sleep(0.05)  # the iopub stream of the cell trails its reply a little
        out = "".join(self._outputs.pop(msg_id))
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {code.splitlines()[0]!r}\n{out}\n{reply['content'].get('evalue', '')}")
        return out

    def round_trip(self, code: str = "1", timeout: float = 60) -> float:
        """Seconds from sending `code` to its execute_reply."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=False)
        self._reply(msg_id, timeout)
        return time.perf_counter() - start

    def _reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def shutdown(self) -> None:
        try:
            self.execute("%nbflow scheduler stop", timeout=90)
        except Exception:  # noqa: BLE001 - nbflow may not be loaded; the kernel goes anyway
            pass
        self._stop.set()
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def widget_updates(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The trait changes a widget `comm_msg` carries, else None."""
    if msg["msg_type"] != "comm_msg":
        return None
    data = msg["content"].get("data", {})
    return data.get("state") if data.get("method") == "update" else None
