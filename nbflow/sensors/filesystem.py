"""FileSensor: done once a file (or a non-empty folder) matching a path or glob exists."""
from __future__ import annotations

import glob
import os
from typing import Any

from nbflow.exceptions import ConnectionNotFound
from nbflow.hooks.base import BaseHook
from nbflow.sensors.base import BaseSensorOperator


class FileSensor(BaseSensorOperator):
    """`filepath` (templated, a glob) is read under the `path` in connection `fs_conn_id`'s extra, if it exists.

    As in Airflow, a matching folder counts once it holds at least one file (at any depth); with
    `recursive`, `**` in the glob matches any number of folders.
    """

    template_fields = ("filepath",)
    ui_color = "#91818a"

    def __init__(self, *, filepath: str | os.PathLike[str], fs_conn_id: str = "fs_default", recursive: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = os.fspath(filepath)
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def _base_path(self) -> str:
        try:
            conn = BaseHook.get_connection(self.fs_conn_id)
        except ConnectionNotFound:
            if self.fs_conn_id == "fs_default":  # Airflow ships fs_default with no path: relative to nothing
                return ""
            raise
        return str(conn.extra_dejson.get("path", ""))

    def poke(self, context: dict[str, Any]) -> bool:
        full_path = os.path.join(self._base_path(), self.filepath)
        self.log.info("poking for file %s", full_path)
        for path in glob.glob(full_path, recursive=self.recursive):
            if os.path.isfile(path):
                self.log.info("found file %s", path)
                return True
            for _, _, files in os.walk(path):
                if files:
                    self.log.info("found folder %s holding files", path)
                    return True
        return False


class FileSensorAsync(FileSensor):
    """FileSensor with deferrable=True: waits in reschedule mode (nbflow has no triggerer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)


__all__ = ["FileSensor", "FileSensorAsync"]
