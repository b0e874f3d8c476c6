"""nbflow's benchmark workloads: `python -m benchmarks NAME|all` (or `make bench`).

Each benchmark is a module `benchmarks/<name>.py` exposing `run() -> dict`; the dict has at
least `"seconds"` and may add any other figures. `__main__` finds the modules by listing this
folder (names starting with `_` are helpers, not benchmarks) and prints one JSON object per
benchmark: `{"name": ..., "seconds": ..., ...}`. Shared helpers live in `benchmarks/_util.py`.
"""
