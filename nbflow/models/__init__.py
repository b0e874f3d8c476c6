"""Airflow-compatible path: `from nbflow.models import DAG, BaseOperator, Connection, Variable` (re-exports only)."""
from nbflow.authoring.baseoperator import BaseOperator as BaseOperator
from nbflow.authoring.dag import DAG as DAG
from nbflow.authoring.mapped import MappedOperator as MappedOperator
from nbflow.authoring.params import Param as Param
from nbflow.authoring.params import ParamsDict as ParamsDict
from nbflow.authoring.xcom_arg import XComArg as XComArg
from nbflow.secrets.connection import Connection as Connection
from nbflow.secrets.variable import Variable as Variable
