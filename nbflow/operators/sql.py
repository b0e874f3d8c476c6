"""SQLExecuteQueryOperator: run templated SQL (or a .sql file) on a connection; rows are the XCom."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.hooks.sql import SqlHook, fetch_all_handler

DEFAULT_MAX_ROWS = 1000
log = logging.getLogger("nbflow.task.operators.sql")  # under nbflow.task: lands in the attempt's log


class SQLExecuteQueryOperator(BaseOperator):
    """Runs `sql` on connection `conn_id` and returns the rows as lists (at most `max_rows` of them).

    `sql` is a statement, a list of statements, or the name of a `.sql` file found next to the
    DAG file or in its template_searchpath; it and `parameters` are rendered as Jinja templates.
    Parameters use the driver's style (`?`/`:name` for sqlite, `%s`/`%(name)s` for postgres).
    With several statements the result is a list with one entry per statement, unless
    `return_last` and `sql` was one string.
    """

    template_fields = ("conn_id", "sql", "parameters", "hook_params")
    template_ext = (".sql", ".json")
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#cdaaed"

    def __init__(self, *, sql: str | Iterable[str], conn_id: str | None = None, autocommit: bool = False,
                 parameters: Mapping[str, Any] | Iterable[Any] | None = None,
                 handler: Callable[[Any], Any] = fetch_all_handler, split_statements: bool | None = None,
                 return_last: bool = True, max_rows: int | None = DEFAULT_MAX_ROWS,
                 show_return_value_in_logs: bool = False, hook_params: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.autocommit = autocommit
        self.parameters = parameters
        self.handler = handler
        self.split_statements = split_statements
        self.return_last = return_last
        self.max_rows = max_rows
        self.show_return_value_in_logs = show_return_value_in_logs
        self.hook_params = hook_params or {}

    def get_db_hook(self) -> SqlHook:
        """The hook for `conn_id` (Airflow's name)."""
        return SqlHook(self.conn_id, **self.hook_params)

    def execute(self, context: dict[str, Any]) -> Any:
        hook = self.get_db_hook()
        sql = self.sql if isinstance(self.sql, str) else list(self.sql)
        split = self.split_statements if self.split_statements is not None else False
        try:
            output = hook.run(sql, autocommit=self.autocommit, parameters=self.parameters,
                              handler=self.handler if self.do_xcom_push else None,
                              split_statements=split, return_last=self.return_last)
        finally:
            hook.close()
        if not self.do_xcom_push:
            return None
        single = isinstance(sql, str) and (self.return_last or not split)
        result = self._limit(output) if single else [self._limit(part) for part in output]
        if self.show_return_value_in_logs:
            log.info("query result: %s", result)
        return result

    def _limit(self, rows: Any) -> Any:
        if rows is None or not isinstance(rows, list):
            return rows
        if self.max_rows is not None and len(rows) > self.max_rows:
            log.warning("task %r: the query returned %d rows; only the first %d (max_rows) are returned",
                             self.task_id, len(rows), self.max_rows)
            rows = rows[:self.max_rows]
        return [list(row) if isinstance(row, (tuple, list)) else row for row in rows]
