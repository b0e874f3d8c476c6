"""The executor registry builds each executor from its own settings, read from config once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nbflow.configuration import Config
from nbflow.exceptions import NbflowConfigException, UnknownPluginError
from nbflow.runtime.executors.base import BaseExecutor, ExecutorSettings, executors
from nbflow.runtime.executors.factory import build_executor
from nbflow.runtime.executors.local import LocalExecutor, LocalExecutorSettings
from nbflow.runtime.executors.sequential import SequentialExecutor, SequentialExecutorSettings


def never_run(workload: object) -> int:
    raise AssertionError("no attempt runs in these tests")


def test_unknown_executor_names_the_known_ones() -> None:
    with pytest.raises(UnknownPluginError) as caught:
        build_executor(Config(), name="locl", run_workload=never_run)
    assert str(caught.value) == "unknown executor 'locl' (core.executor); known: local, sequential"


def test_unknown_configured_executor_is_refused_too() -> None:
    config = Config(env={"NBFLOW__CORE__EXECUTOR": "celry"})
    with pytest.raises(UnknownPluginError, match="unknown executor 'celry'"):
        build_executor(config, run_workload=never_run)


def test_local_settings_come_from_config_file_values(tmp_path: Path) -> None:
    config = Config(values={"core": {"parallelism": 3, "dags_folder": "flows"},
                            "local_executor": {"worker_start_timeout_sec": 9}}, file=tmp_path / "nbflow.toml")
    executor = build_executor(config, run_workload=never_run)
    assert isinstance(executor, LocalExecutor)
    assert executor.settings == LocalExecutorSettings(parallelism=3, dags_folder=tmp_path / "flows",
                                                      worker_start_timeout_sec=9.0)
    assert executor.parallelism == 3


def test_environment_overrides_parallelism() -> None:
    config = Config(values={"core": {"parallelism": 3}}, env={"NBFLOW__CORE__PARALLELISM": "7"})
    executor = build_executor(config, name="local", run_workload=never_run)
    assert executor.parallelism == 7 and executor.settings.parallelism == 7


def test_sequential_runs_one_at_a_time_whatever_parallelism_says() -> None:
    config = Config(env={"NBFLOW__CORE__PARALLELISM": "8", "NBFLOW__CORE__EXECUTOR": "sequential"})
    executor = build_executor(config, run_workload=never_run)
    assert isinstance(executor, SequentialExecutor)
    assert executor.parallelism == 1 and executor.open_slots() == 1


def test_sequential_settings_refuse_more_than_one() -> None:
    with pytest.raises(NbflowConfigException, match="one attempt at a time"):
        SequentialExecutorSettings(parallelism=2)


def test_settings_are_frozen() -> None:
    settings = SequentialExecutorSettings()
    with pytest.raises(AttributeError):
        settings.parallelism = 2  # type: ignore[misc]


def test_a_new_executor_is_a_class_with_its_settings_and_a_decorator() -> None:
    @dataclass(frozen=True, slots=True)
    class BrokerSettings(ExecutorSettings):
        broker_url: str

    class BrokerExecutor(BaseExecutor):
        name = "broker-test"

        @classmethod
        def settings_from_config(cls, config: Config) -> BrokerSettings:
            return BrokerSettings(parallelism=config.getint("core", "parallelism"),
                                  broker_url=config.get("broker_test", "broker_url"))

    executors.register("broker-test")(BrokerExecutor)
    try:
        config = Config(env={"NBFLOW__BROKER_TEST__BROKER_URL": "redis://broker:6379/0"})
        executor = build_executor(config, name="broker-test")
        assert executor.settings == BrokerSettings(parallelism=4, broker_url="redis://broker:6379/0")
    finally:
        executors._items.pop("broker-test")
