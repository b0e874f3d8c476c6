"""The names of the task context (Airflow's); a callable's parameter with one of these names gets it."""

CONTEXT_KEYS = frozenset({
    "conf", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds", "ds_nodash",
    "expanded_ti_count", "inlets", "logical_date", "macros", "map_index_template", "outlets", "params",
    "prev_data_interval_start_success", "prev_data_interval_end_success", "prev_start_date_success",
    "prev_end_date_success", "prev_ds", "prev_ds_nodash", "next_ds", "next_ds_nodash", "run_id",
    "task", "task_instance", "task_instance_key_str", "test_mode", "templates_dict", "ti", "triggering_asset_events",
    "ts", "ts_nodash", "ts_nodash_with_tz", "var", "execution_date", "yesterday_ds", "tomorrow_ds",
    "yesterday_ds_nodash", "tomorrow_ds_nodash", "prev_execution_date", "next_execution_date",
    "try_number", "exception", "reason",
})
