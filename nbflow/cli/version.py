"""`nbflow version`."""
from __future__ import annotations

import argparse

from nbflow.configuration import Config


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("version", parents=[common], help="print nbflow's version")
    parser.set_defaults(run=show_version)


def show_version(args: argparse.Namespace, conf: Config) -> int:
    from nbflow import __version__
    print(__version__)
    return 0
