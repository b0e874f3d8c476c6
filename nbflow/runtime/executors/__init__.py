"""Executors run attempts the scheduler queued: `sequential` in process, `local` in forked processes."""
from nbflow.runtime.executors.base import BaseExecutor as BaseExecutor
from nbflow.runtime.executors.base import ExecutorSettings as ExecutorSettings
from nbflow.runtime.executors.base import executors as executors
