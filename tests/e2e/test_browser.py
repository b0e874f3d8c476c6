"""A notebook run in a real JupyterLab, in Debian's Chromium driven by Playwright.

One JupyterLab server per module, on a free loopback port, with its own Jupyter config, runtime and
data dirs (the venv's share/jupyter stays on the path: anywidget's labextension lives there) and a
scratch root dir holding an nbflow.toml, so the kernel's nbflow uses a fresh home and an empty dags
folder. The test opens a notebook, runs all its cells (`%load_ext nbflow`, a `%%dag`, `%%task`
cells, `%nbflow scheduler start`, `%dag run`) and then looks only at what a user sees: every node of
the run's graph painted the success colour, and the log panel filled after a click on a node.
A screenshot of the finished page is kept as a test artifact in `.artifacts/browser/` (git-ignored).

The pitfalls that shaped this (research/jupyter.md §6): `--allow-root`, `expose_app_in_browser`
for `window.jupyterapp`, `commands.execute` resolving only when every cell has finished (so it is
not awaited), the news toast (turned off in the user settings), sessions kept across page loads
(deleted after each test).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbflow.graph import STATE_COLORS
from tests.services import require_service

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / ".artifacts" / "browser"
TOKEN = "nbflow-browser-test"
TUTORIAL = REPO / "notebooks" / "tutorial.ipynb"

SMOKE_CELLS = [
    "%load_ext nbflow",
    "%%dag browser_smoke\npass",
    "%%task extract\nrows = [1, 2, 3]\nprint('extracted', len(rows), 'rows')\nrows",
    "%%task transform --upstream extract\nprint('doubling', extract)\n[2 * r for r in extract]",
    "%%task load --upstream transform\nprint('loaded total', sum(transform))\nsum(transform)",
    "%nbflow scheduler start",
    "%dag run browser_smoke",
]


@dataclass(frozen=True)
class NotebookCase:
    """A notebook to run, the DAG its `%dag run` cell runs, the task whose node the test clicks (None: the
    last node) and text its log panel must then show besides the attempt's own `[nbflow] ... success` lines."""

    name: str
    dag_id: str
    click_task: str | None
    log_text: str | None


CASES = [
    pytest.param(NotebookCase("browser_smoke.ipynb", "browser_smoke", "load", "loaded total 12"), id="smoke"),
    # Skipped by a mark, not in the test: a skipped case then starts no JupyterLab.
    pytest.param(NotebookCase("notebooks/tutorial.ipynb", "tutorial_orders", None, None), id="tutorial",
                 marks=pytest.mark.skipif(not TUTORIAL.is_file(), reason="notebooks/tutorial.ipynb is not written yet")),
]


def _notebook(cells: list[str]) -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                   "source": source} for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running `jupyter lab` and the folder it serves."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(f"{self.url}{path}?token={TOKEN}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def delete_sessions(self) -> None:
        """Shut the notebooks' kernels (and so their schedulers); the server keeps them across page loads."""
        for session in self.api("GET", "/api/sessions"):  # type: ignore[union-attr]
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _lab_env(base: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("NBFLOW", "JUPYTER", "JPY_"))}
    for name in ("config", "runtime", "data"):  # data: the user dir only; sys.prefix/share/jupyter stays on the path
        (base / f"jupyter-{name}").mkdir()
        env[f"JUPYTER_{name.upper()}_DIR"] = str(base / f"jupyter-{name}")
    # The kernel inherits this environment: it must import the nbflow under test.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    # No "news" toast over the widget, and no update check (there is no network).
    settings = base / "jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    return env


def _prepare_root(root: Path) -> None:
    """The notebooks' folder: an nbflow.toml (fresh home, empty dags folder), the smoke notebook and,
    laid out as in the repository, its notebooks/ (the tutorial and the notebooks it runs)."""
    (root / "dags").mkdir(parents=True)
    (root / "nbflow.toml").write_text(
        'home = ".nbflow"\n[core]\ndags_folder = "dags"\nnotebooks_folder = "notebooks"\n'
        "dags_are_paused_at_creation = false\n")
    (root / "browser_smoke.ipynb").write_text(json.dumps(_notebook(SMOKE_CELLS), indent=1))
    if (REPO / "notebooks").is_dir():
        shutil.copytree(REPO / "notebooks", root / "notebooks")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid, then anything it started that outlived it (kernels, workers)."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.send_signal(signal.SIGINT)  # jupyter_server shuts its kernels down on SIGINT/SIGTERM
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=15)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, serving a scratch folder; stopped by pid at the end."""
    if not CHROMIUM.is_file():
        require_service("chromium", f"{CHROMIUM} is missing; `make sysdeps` installs Debian's chromium")
    for module in ("jupyterlab", "playwright", "anywidget", "psutil"):
        try:
            __import__(module)
        except ImportError:
            require_service(module, f"python package {module} is not installed; `make venv` installs the test extra")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    _prepare_root(root)
    port = _free_port()
    log = base / "jupyter-lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=_lab_env(base), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(url=f"http://127.0.0.1:{port}", root=root, process=process, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer /api/status within 60 s:\n{server.log_tail()}")
                time.sleep(0.2)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _rgb(hex_colour: str) -> str:
    """A `#rrggbb` colour as getComputedStyle reports it."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


# The first error of the notebook's cells, else null: an error output ("Ename: evalue"), or a magic's
# UsageError, which IPython prints to stderr without an error output. Run-all stops at a failed cell,
# so the test stops waiting too. Read from the notebook's model: in the DOM both look like stderr.
CELL_ERROR = """() => {
  const notebook = window.jupyterapp.shell.currentWidget?.content?.model;
  for (const cell of notebook ? notebook.cells : []) {
    const outputs = cell.type === 'code' ? cell.outputs : null;
    for (let i = 0; outputs && i < outputs.length; i++) {
      const output = outputs.get(i).toJSON();
      if (output.output_type === 'error') return `${output.ename}: ${output.evalue}`;
      const text = output.output_type === 'stream' && output.name === 'stderr' ? [].concat(output.text).join('') : '';
      if (text.startsWith('UsageError')) return text;
    }
  }
  return null;
}"""


def _wait_unless_a_cell_fails(page, predicate: str, arg: object, timeout: float) -> None:  # noqa: ANN001
    """Wait until `predicate(arg)` is true; fail at once with the cell's error when one shows."""
    result = page.wait_for_function(f"(arg) => ({CELL_ERROR})() || ({predicate})(arg)", arg=arg, timeout=timeout)
    value = result.json_value()
    if isinstance(value, str):
        pytest.fail(f"a cell failed:\n{value}", pytrace=False)


# A widget whose graph has every node painted `state` (attribute and computed fill), shown by the cell
# whose source holds `cellText` (the `%dag run` cell: other cells show widgets too). Its cell gets the
# attribute `data-test-finished`, so the test keeps to that widget even if later cells show more; the
# cell, not the widget's element: when the run ends the kernel updates the display (the static copy
# a saved notebook keeps), and JupyterLab renders a new view of the same model in the same cell.
ALL_NODES_PAINTED = """([state, colour, cellText]) => {
  for (const widget of document.querySelectorAll('.jp-OutputArea-output .nbflow-dag')) {
    const input = widget.closest('.jp-Cell')?.querySelector('.jp-InputArea-editor');
    if (!input || !input.textContent.includes(cellText)) continue;
    const nodes = [...widget.querySelectorAll('.nbflow-graph svg g.node')];
    if (nodes.length > 0 && nodes.every(node => node.getAttribute('data-state') === state &&
        [...node.querySelectorAll('path, polygon')].some(shape => getComputedStyle(shape).fill === colour))) {
      widget.closest('.jp-Cell').setAttribute('data-test-finished', '');
      return true;
    }
  }
  return false;
}"""

@pytest.mark.parametrize("case", CASES)
def test_notebook_run_turns_the_graph_green_and_a_clicked_node_shows_its_log(
        case: NotebookCase, lab: Lab, browser, tmp_path: Path) -> None:  # noqa: ANN001 - playwright Browser
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(60_000)
        page.goto(f"{lab.url}/lab/tree/{case.name}?token={TOKEN}&reset")
        page.wait_for_function("() => !!window.jupyterapp")
        page.evaluate("async () => { await window.jupyterapp.started; }")
        expect(page.locator("#jp-main-statusbar").get_by_text("Idle")).to_be_visible(timeout=60_000)
        # Not awaited: the command resolves only once every cell has finished.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        _wait_unless_a_cell_fails(page, "() => !!document.querySelector('.nbflow-dag .nbflow-graph svg g.node')",
                                  None, timeout=120_000)
        _wait_unless_a_cell_fails(page, ALL_NODES_PAINTED,
                                  ["success", _rgb(STATE_COLORS["success"]), f"%dag run {case.dag_id}"],
                                  timeout=180_000)
        widget = page.locator(".jp-Cell[data-test-finished] .jp-OutputArea-output .nbflow-dag").last

        node = widget.locator(f"g.node#n_{case.click_task}" if case.click_task else "g.node").last
        node.click()  # retries if the view is replaced meanwhile (scroll_into_view_if_needed would not)
        task = case.click_task or widget.locator(".nbflow-log-title").inner_text().removeprefix("log of ")
        expect(widget.locator(".nbflow-log-title")).to_contain_text(f"log of {task}")
        log = widget.locator("pre.nbflow-log")
        # The attempt's header names the task instance: `[nbflow] DAG.TASK[RUN_ID] try 1 of N (...)`.
        expect(log).to_contain_text(re.compile(rf"\[nbflow\] \S+\.{re.escape(task)}\[[^\]]+\] try \d+"),
                                    timeout=30_000)
        expect(log).to_contain_text("[nbflow] success after", timeout=30_000)
        if case.log_text:
            expect(log).to_contain_text(case.log_text)
        expect(widget.locator(f'tr[data-task="{task}"]')).to_have_attribute("data-state", "success")

        log.scroll_into_view_if_needed()
        shot = tmp_path / f"{Path(case.name).stem}-run.png"
        page.screenshot(path=str(shot), full_page=False)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ARTIFACTS / shot.name)
        (ARTIFACTS / f"{Path(case.name).stem}-failure.png").unlink(missing_ok=True)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "failure.png", ARTIFACTS / f"{Path(case.name).stem}-failure.png")
        print(f"jupyter lab log:\n{lab.log_tail(80)}")
        raise
    finally:
        page.close()
        lab.delete_sessions()
