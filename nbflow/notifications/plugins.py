"""Notifiers from the plugins folder (`[core] plugins_folder`, `extensions/` in this repository).

A module there that defines a BaseNotifier subclass makes it available by class name:

    from nbflow.notifications import get_notifier
    WebhookNotifier = get_notifier("WebhookNotifier")

The folder's modules are imported once per process, the first time a name is not known already
(built-ins and the `nbflow.notifiers` entry points come first); a module that fails to import is
named in the error of the lookup that needed it, and never stops the others loading.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from nbflow.exceptions import NbflowException, UnknownPluginError
from nbflow.notifications.basenotifier import BaseNotifier, notifiers

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


def get_notifier(name: str, plugins_folder: Path | None = None) -> type[BaseNotifier]:
    """The notifier class called `name`: built-in, from an entry point, or from the plugins folder."""
    import nbflow.notifications.smtp  # noqa: F401 - registers the built-in SmtpNotifier

    if name in notifiers:
        return notifiers.get(name)
    if plugins_folder is None:
        from nbflow.configuration import load_config
        plugins_folder = load_config().path("core", "plugins_folder")
    errors = load_plugin_modules(plugins_folder)
    try:
        return notifiers.get(name, where=f"plugins folder {plugins_folder}")
    except UnknownPluginError as err:
        if errors:
            broken = "; ".join(f"{file}: {why}" for file, why in errors.items())
            raise NbflowException(f"{err}; these plugin modules failed to import: {broken}") from None
        raise
