"""Connections, variables and the secrets backends chain (imports no SQLAlchemy, cryptography or hvac)."""
from nbflow.secrets.chain import NOTSET as NOTSET
from nbflow.secrets.chain import SecretsChain as SecretsChain
from nbflow.secrets.chain import default_chain as default_chain
from nbflow.secrets.chain import get_connection as get_connection
from nbflow.secrets.chain import get_variable as get_variable
from nbflow.secrets.chain import reset_default_chain as reset_default_chain
from nbflow.secrets.connection import Connection as Connection
from nbflow.secrets.variable import Variable as Variable
