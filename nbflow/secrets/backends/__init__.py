"""Secrets backends: the base class and the registry; each built-in lives in its own module."""
from nbflow.secrets.backends.base import BUILTIN_MODULES as BUILTIN_MODULES
from nbflow.secrets.backends.base import BaseSecretsBackend as BaseSecretsBackend
from nbflow.secrets.backends.base import backends as backends
