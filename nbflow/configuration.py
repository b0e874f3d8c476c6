"""Settings: `NBFLOW__SECTION__KEY` > nbflow.toml (cwd or parents, or $NBFLOW_CONFIG) > defaults.

Nothing here runs at import. Components call `load_config()` once where they are built and
pass the values they need down (STYLE §10).
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.exceptions import NbflowConfigException

DEFAULTS: dict[str, dict[str, Any]] = {
    "core": {
        "dags_folder": "dags",
        "plugins_folder": "extensions",
        "notebooks_folder": "notebooks",
        "executor": "local",
        "parallelism": 4,
        "max_active_tasks_per_dag": 16,
        "max_active_runs_per_dag": 16,
        "dagbag_import_timeout": 30.0,
        "dags_are_paused_at_creation": True,
        "max_xcom_size": 49152,
        "fernet_key": "",
        # store XCom values encrypted with the Fernet key ("fernet:<token>"); reading works either way
        "encrypt_xcom": False,
        "default_timezone": "UTC",
        "sensitive_var_conn_names": "",
    },
    "database": {"sql_alchemy_conn": ""},
    "logging": {"base_log_folder": "", "log_level": "INFO"},
    "scheduler": {"heartbeat_sec": 1.0, "orphan_timeout_sec": 30.0, "task_heartbeat_sec": 2.0,
                  "parse_interval_sec": 2.0, "min_loop_interval_sec": 0.02,
                  # seconds a DAG callback's process may run before it gets SIGKILL (runtime/callbacks.py)
                  "callback_timeout": 60.0},
    # The DAG processor (runtime/dag_processor.py) parses DAG files in child processes: how many at once,
    # how much address space each may add (MiB, RLIMIT_AS; 0: no cap), how often the scheduler refreshes (s).
    "dag_processor": {"parsing_processes": 2, "max_memory_mb": 2048, "refresh_interval": 2.0},
    "local_executor": {"worker_start_timeout_sec": 120.0},
    "notebook": {"kernel_pool_size": 2, "output_folder": ""},
    "secrets": {"backends": "env,metastore", "cache_ttl_seconds": 300.0, "fail_closed": False},
    "vault": {},
    "webserver": {"host": "127.0.0.1", "port": 8080},
    # Airflow's keys and defaults; an `smtp_default` connection wins over them when it exists.
    "smtp": {"smtp_host": "localhost", "smtp_port": 25, "smtp_starttls": True, "smtp_ssl": False,
             "smtp_user": "", "smtp_password": "", "smtp_mail_from": "nbflow@example.com",
             "smtp_timeout": 30.0, "smtp_retry_limit": 5},
    # Task failure/retry e-mails: the connection to try first and optional Jinja2 template files.
    "email": {"email_conn_id": "smtp_default", "from_email": "", "subject_template": "",
              "html_content_template": ""},
}

_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n", ""}


def find_config_file(start: Path, env: Mapping[str, str]) -> Path | None:
    """The file named by NBFLOW_CONFIG, else the nearest nbflow.toml from `start` upwards."""
    if env.get("NBFLOW_CONFIG"):
        path = Path(env["NBFLOW_CONFIG"]).expanduser()
        if not path.is_file():
            raise NbflowConfigException(f"NBFLOW_CONFIG names {path}, which does not exist")
        return path
    for folder in [start, *start.parents]:
        candidate = folder / "nbflow.toml"
        if candidate.is_file():
            return candidate
    return None


class Section:
    """One section's values with attribute access: `conf.core.parallelism`."""

    def __init__(self, config: "Config", name: str) -> None:
        self._config, self._name = config, name

    def __getattr__(self, key: str) -> Any:
        return self._config.get(self._name, key)


@dataclass
class Config:
    """Resolved configuration; values are coerced to the type of their default."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    file: Path | None = None

    def __getattr__(self, section: str) -> Section:
        if section.startswith("_") or section in {"values", "env", "file"}:
            raise AttributeError(section)
        return Section(self, section)

    def has(self, section: str, key: str) -> bool:
        env_key = f"NBFLOW__{section.upper()}__{key.upper()}"
        return env_key in self.env or key in self.values.get(section, {}) or key in DEFAULTS.get(section, {})

    def get(self, section: str, key: str, fallback: Any = ...) -> Any:
        env_key = f"NBFLOW__{section.upper()}__{key.upper()}"
        default = DEFAULTS.get(section, {}).get(key, fallback)
        if env_key in self.env:
            raw: Any = self.env[env_key]
        elif key in self.values.get(section, {}):
            raw = self.values[section][key]
        elif default is not ...:
            return default
        else:
            raise NbflowConfigException(f"no configuration value [{section}] {key}; set it in nbflow.toml "
                                        f"or as {env_key}")
        return _coerce(raw, default, f"[{section}] {key}")

    def getint(self, section: str, key: str, fallback: Any = ...) -> int:
        return int(_coerce(self.get(section, key, fallback), 0, f"[{section}] {key}"))

    def getfloat(self, section: str, key: str, fallback: Any = ...) -> float:
        return float(_coerce(self.get(section, key, fallback), 0.0, f"[{section}] {key}"))

    def getboolean(self, section: str, key: str, fallback: Any = ...) -> bool:
        return bool(_coerce(self.get(section, key, fallback), False, f"[{section}] {key}"))

    def getlist(self, section: str, key: str, fallback: Any = ...) -> list[str]:
        value = self.get(section, key, fallback)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return [str(item) for item in value]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Every known key with its resolved value, for `nbflow config list`."""
        sections = {name: dict(keys) for name, keys in DEFAULTS.items()}
        for name, keys in self.values.items():
            sections.setdefault(name, {}).update(keys)
        for env_key in self.env:
            parts = env_key.split("__")
            if len(parts) == 3 and parts[0] == "NBFLOW":
                sections.setdefault(parts[1].lower(), {})[parts[2].lower()] = None
        return {s: {k: self.get(s, k) for k in keys} for s, keys in sections.items()}

    # -- paths every component needs ------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self.file.parent if self.file else Path.cwd()

    @property
    def home(self) -> Path:
        if self.env.get("NBFLOW_HOME"):
            return Path(self.env["NBFLOW_HOME"]).expanduser().resolve()
        if "home" in self.values.get("core", {}) or "home" in self.values.get("", {}):
            raw = self.values.get("core", {}).get("home") or self.values[""]["home"]
            return (self.base_dir / Path(raw).expanduser()).resolve()
        return (Path.home() / ".nbflow").resolve()

    def path(self, section: str, key: str) -> Path:
        """A path setting, relative paths taken from the config file's folder."""
        return (self.base_dir / Path(str(self.get(section, key))).expanduser()).resolve()

    @property
    def dags_folder(self) -> Path:
        return self.path("core", "dags_folder")

    @property
    def log_folder(self) -> Path:
        raw = self.get("logging", "base_log_folder")
        return self.path("logging", "base_log_folder") if raw else self.home / "logs"

    @property
    def sql_alchemy_conn(self) -> str:
        return self.get("database", "sql_alchemy_conn") or f"sqlite:///{self.home / 'nbflow.db'}"


def _coerce(raw: Any, default: Any, where: str) -> Any:
    if default is ... or default is None:
        return raw
    if isinstance(raw, type(default)) and isinstance(raw, bool) == isinstance(default, bool):
        return raw
    try:
        if isinstance(default, bool):
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return raw if not isinstance(default, str) else str(raw)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise NbflowConfigException(f"configuration {where} = {raw!r} is not a valid {kind}") from None


def config_environment_key() -> tuple[Any, ...]:
    """What `load_config()` reads: the working directory (where nbflow.toml is found) and NBFLOW_ settings.

    For caches of what a config decides: a process that runs in one environment after another (a test
    run, a kernel whose NBFLOW_HOME is changed) must not keep the first one's. NBFLOW_CONN_*/NBFLOW_VAR_*
    are left out: they are secrets' values, read at each lookup."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = ""
    settings = tuple(sorted((name, value) for name, value in os.environ.items()
                            if name.startswith(("NBFLOW__", "NBFLOW_HOME", "NBFLOW_CONFIG"))))
    return cwd, settings


def load_config(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read nbflow.toml (if any) and the environment into a Config."""
    env = dict(os.environ if env is None else env)
    path = find_config_file((cwd or Path.cwd()).resolve(), env)
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise NbflowConfigException(f"{path}: cannot read configuration: {err}") from err
        for key, value in data.items():
            if isinstance(value, dict):  # merged: a top-level `home` above [core] has filled it already
                values.setdefault(key, {}).update(value)
            else:  # top-level keys such as `home = ".nbflow"` belong to [core]
                values.setdefault("core", {})[key] = value
    return Config(values=values, env=env, file=path)
