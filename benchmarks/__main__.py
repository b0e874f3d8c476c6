"""`python -m benchmarks NAME [NAME ...]` or `python -m benchmarks all`: one JSON line each.

To add a benchmark, write `benchmarks/<name>.py` with `run() -> dict` (at least "seconds");
it is found by listing this folder, nothing to register.
"""
from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

Benchmark = Callable[[], dict[str, object]]


def registry() -> dict[str, Benchmark]:
    """Every benchmark module in this folder, by name; `_`-prefixed modules are helpers."""
    names = sorted(path.stem for path in Path(__file__).parent.glob("*.py") if not path.stem.startswith("_"))
    return {name: importlib.import_module(f"benchmarks.{name}").run for name in names}


def main(argv: list[str]) -> int:
    benchmarks = registry()
    asked = list(benchmarks) if argv in ([], ["all"]) else argv
    unknown = [name for name in asked if name not in benchmarks]
    if unknown:
        print(f"error: unknown benchmark {', '.join(map(repr, unknown))}; known: {', '.join(benchmarks)}, all",
              file=sys.stderr)
        return 2
    for name in asked:
        result = benchmarks[name]()
        print(json.dumps({"name": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
