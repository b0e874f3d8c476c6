"""The command line's frame: help, version, bad arguments, `--verbose`, and the one-line error."""
from __future__ import annotations

import argparse
import subprocess
import sys

from tests.cli.conftest import Cli
from tests.conftest import write_dag


def test_version_prints_the_package_version(nbflow: Cli) -> None:
    from nbflow import __version__
    done = nbflow("version")
    assert (done.code, done.out.strip(), done.err) == (0, __version__, "")


def test_version_works_even_with_a_broken_config_file(nbflow: Cli) -> None:
    (nbflow.env.dags.parent / "nbflow.toml").write_text("this is [not toml")
    assert nbflow("version").code == 0
    done = nbflow("dags", "list")
    assert done.code == 1 and done.error_line.startswith("error: ") and "cannot read configuration" in done.err


def test_help_lists_the_nouns() -> None:
    done = subprocess.run([sys.executable, "-m", "nbflow.cli.main", "--help"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0
    assert all(noun in done.stdout for noun in ("dags", "tasks", "version"))


def test_help_and_version_do_not_import_the_authoring_layer() -> None:
    code = ("import sys; from nbflow.cli.main import main; main(['version']); "
            "print(sorted(m for m in sys.modules if m.startswith(('nbflow.authoring', 'nbflow.runtime', 'jinja2'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_bad_arguments_exit_2_with_usage(nbflow: Cli) -> None:
    for args in (("dags",), ("dags", "frobnicate"), ("dags", "list", "--output", "xml"), ()):
        done = nbflow(*args)
        assert done.code == 2, args
        assert "usage: nbflow" in done.err and "error:" in done.error_line


def test_a_failure_is_one_line_and_verbose_adds_the_traceback(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "flow.py", """
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("flow", start_date=datetime(2025, 1, 1)):
            EmptyOperator(task_id="only")
    """)
    quiet = nbflow("dags", "test", "flow", "--conf", "{")
    assert quiet.code == 1 and quiet.err.startswith("error: --conf is not valid JSON") and quiet.err.count("\n") == 1
    for args in (("--verbose", "dags", "test", "flow", "--conf", "{"), ("dags", "test", "flow", "--conf", "{", "-v")):
        loud = nbflow(*args)
        assert loud.code == 1 and "Traceback" in loud.err and loud.error_line == quiet.error_line


def test_each_command_is_registered_by_the_module_main_builds_for_it() -> None:
    from nbflow.cli.main import COMMANDS, build_parser

    def commands_of(parser: argparse.ArgumentParser) -> list[str]:
        return [name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                for name in action.choices]

    assert sorted(commands_of(build_parser())) == sorted(COMMANDS)
    for command in COMMANDS:
        assert command in commands_of(build_parser([command, "--help"]))


def test_a_mistyped_command_is_told_the_known_ones(nbflow: Cli) -> None:
    done = nbflow("dagz", "list")
    assert done.code == 2
    assert "invalid choice: 'dagz'" in done.err and "connections" in done.err
