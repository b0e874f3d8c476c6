"""Custom Timetable classes as the scheduler finds them: by module and name, never from a DAG file.

The scheduler rebuilds a DAG's schedule from its serialized form and never imports the dags folder, so a
custom class must come from somewhere it may import: the plugins folder (`[core] plugins_folder`) or an
installed package, as Airflow asks its timetables to be registered by a plugin. The DAG processor checks
this when it stores a DAG, so a class defined in a DAG file is that file's import error, not a DAG that
silently never runs.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from nbflow.exceptions import TimetableNotRegistered
from nbflow.utils.plugins import load_plugin_modules


#: The names DAG files and notebook cells are imported under (runtime/dagbag.py, runtime/notebook_dags.py).
_DAG_MODULE_PREFIXES = ("nbflow_dagfile_", "nbflow_cells_")


def _folders() -> tuple[Path, Path]:
    from nbflow.configuration import load_config
    config = load_config()
    return config.path("core", "plugins_folder"), config.dags_folder


def _module(name: str, plugins: Path) -> Any:
    module = sys.modules.get(name)
    if module is None:
        load_plugin_modules(plugins)
        module = sys.modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - whatever stops the import, the class cannot be found
            raise TimetableNotRegistered(
                f"Timetable module {name!r} cannot be imported ({type(err).__name__}: {err}); put it in the "
                f"plugins folder ({plugins}) or an installed package") from None
    return module


def timetable_class(module_name: str, qualname: str) -> type:
    """The class `module_name.qualname`, if the scheduler may import it; else TimetableNotRegistered."""
    from nbflow.authoring.timetables import Timetable

    plugins, dags = _folders()
    where = f"{qualname} (module {module_name})"
    move = f"move it to the plugins folder ({plugins}) or an installed package"
    if module_name == "__main__" or module_name.startswith(_DAG_MODULE_PREFIXES):
        file = getattr(sys.modules.get(module_name), "__file__", None) or "a notebook or kernel"
        raise TimetableNotRegistered(f"Timetable class {qualname} is defined in {file}, which the scheduler "
                                     f"never imports: {move}")
    module = _module(module_name, plugins)
    file = getattr(module, "__file__", None)
    if not file:
        raise TimetableNotRegistered(f"Timetable class {where} has no file the scheduler could import: {move}")
    path = Path(file).resolve()
    if path.is_relative_to(dags) and not path.is_relative_to(plugins):
        raise TimetableNotRegistered(f"Timetable class {qualname} is defined in the dags folder ({path}), "
                                     f"which the scheduler never imports: {move}")
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Timetable)):
        raise TimetableNotRegistered(f"{where} is not a Timetable class (module {path})")
    return found


def serialize_timetable(table: Any) -> dict[str, Any]:
    """The stored form of a custom schedule: where its class lives and what it serializes to."""
    cls = type(table)
    timetable_class(cls.__module__, cls.__qualname__)  # the scheduler must be able to rebuild it
    data = table.serialize()
    return {"kind": "custom", "module": cls.__module__, "qualname": cls.__qualname__, "data": data,
            "summary": str(getattr(table, "summary", cls.__name__))}


def deserialize_timetable(spec: dict[str, Any]) -> Any:
    return timetable_class(spec["module"], spec["qualname"]).deserialize(spec.get("data") or {})
