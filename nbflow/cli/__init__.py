"""The `nbflow` command line: one module per noun (`dags.py`, `tasks.py`, ...), wired up in `main.py`."""
