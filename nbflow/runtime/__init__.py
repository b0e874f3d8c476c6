"""Running DAGs: DagBag, task runner, in-process runs, scheduler and executors."""
