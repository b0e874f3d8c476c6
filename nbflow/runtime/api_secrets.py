"""Use case of the engine's door (`nbflow.runtime.api`): tell the masker every secret this installation holds."""
from __future__ import annotations

from nbflow.runtime.environment import Environment


def register_secrets(env: Environment) -> None:
    """Register NBFLOW_CONN_*/NBFLOW_VAR_* secrets and those stored in the metadata database with the masker.

    For processes that print what tasks produced (the scheduler, the CLI's display commands): a value a
    task wrote, or a run's error, is masked there even when this process never read the secret itself."""
    from nbflow.secrets.chain import SecretsChain
    from nbflow.secrets.known import register_environment_secrets, register_known_secrets

    chain = SecretsChain.from_config(env.config)  # also adds core.sensitive_var_conn_names to the masker's words
    register_environment_secrets()
    register_known_secrets(chain)
