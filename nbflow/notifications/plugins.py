"""Notifiers from the plugins folder (`[core] plugins_folder`, `extensions/` in this repository).

A module there that defines a BaseNotifier subclass makes it available by class name:

    from nbflow.notifications import get_notifier
    WebhookNotifier = get_notifier("WebhookNotifier")

The folder's modules are imported once per process, the first time a name is not known already
(built-ins and the `nbflow.notifiers` entry points come first); a module that fails to import is
named in the error of the lookup that needed it, and never stops the others loading.
"""
from __future__ import annotations

from pathlib import Path

from nbflow.exceptions import NbflowException, UnknownPluginError
from nbflow.notifications.basenotifier import BaseNotifier, notifiers
from nbflow.utils.plugins import load_plugin_modules


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
