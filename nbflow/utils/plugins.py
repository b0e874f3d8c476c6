"""The plugins folder (`[core] plugins_folder`): trusted code every nbflow process may import.

Unlike the dags folder, whose files only the DAG processor's children import, the plugins folder holds
what the scheduler itself needs by name: notifiers, secrets backends, custom Timetable classes.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_loaded: dict[Path, dict[str, str]] = {}  # plugins folder -> {module file: why it failed to import}


def load_plugin_modules(folder: Path) -> dict[str, str]:
    """Import every `*.py` of `folder` (once); {file name: error} for those that failed."""
    folder = folder.resolve()
    if folder in _loaded:
        return _loaded[folder]
    errors: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else ():
        if path.name.startswith("_"):
            continue
        known = sys.modules.get(path.stem)
        if known is not None and getattr(known, "__file__", None) and Path(known.__file__).resolve() == path:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - one broken plugin never hides the others
            sys.modules.pop(path.stem, None)
            errors[path.name] = f"{type(err).__name__}: {err}"
    _loaded[folder] = errors
    return errors


_on_path_for: tuple[object, ...] | None = None
_added: str | None = None  # the folder this module put on sys.path


def plugins_folder_on_path() -> None:
    """Put the configured plugins folder on sys.path, as Airflow does: a DAG file imports a plugin module
    (a custom Timetable's) by its plain name, in every process that loads DAG files. Once per config; a
    process whose config changed (a kernel, a test run) has the new folder there instead of the old."""
    global _on_path_for, _added
    from nbflow.configuration import config_environment_key, load_config

    key = config_environment_key()
    if key == _on_path_for:
        return
    _on_path_for = key
    try:
        folder = str(load_config().path("core", "plugins_folder"))
    except Exception:  # noqa: BLE001 - a broken config is reported by whoever needs the config, not here
        return
    if folder == _added:
        return
    if _added is not None and _added in sys.path:
        sys.path.remove(_added)
    _added = None
    if folder not in sys.path:
        sys.path.append(folder)
        _added = folder
