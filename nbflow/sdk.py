"""Airflow-compatible path (Airflow 3's `airflow.sdk`): `from nbflow.sdk import DAG, task` (re-exports only)."""
from nbflow.authoring.baseoperator import BaseOperator as BaseOperator
from nbflow.authoring.dag import DAG as DAG
from nbflow.authoring.dependencies import chain as chain
from nbflow.authoring.dependencies import cross_downstream as cross_downstream
from nbflow.authoring.edges import Label as Label
from nbflow.authoring.params import Param as Param
from nbflow.authoring.taskgroup import TaskGroup as TaskGroup
from nbflow.authoring.trigger_rule import TriggerRule as TriggerRule
from nbflow.authoring.xcom_arg import XComArg as XComArg
from nbflow.decorators import dag as dag
from nbflow.decorators import task as task
from nbflow.decorators import task_group as task_group
from nbflow.secrets.variable import Variable as Variable
from nbflow.secrets.connection import Connection as Connection
from nbflow.operators.python import get_current_context as get_current_context
from nbflow.operators.branch import BaseBranchOperator as BaseBranchOperator
from nbflow.authoring.edges import EdgeModifier as EdgeModifier
