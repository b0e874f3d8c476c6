"""The store's import path for the state vocabulary, kept for importers; the names live in `nbflow.utils.state`."""
from nbflow.utils.state import ATTEMPT_END_STATES as ATTEMPT_END_STATES
from nbflow.utils.state import HEARTBEAT_STATES as HEARTBEAT_STATES
from nbflow.utils.state import RUN_ACTIVE_STATES as RUN_ACTIVE_STATES
from nbflow.utils.state import RUN_FINISHED_STATES as RUN_FINISHED_STATES
from nbflow.utils.state import RUN_STATES as RUN_STATES
from nbflow.utils.state import RUN_TYPES as RUN_TYPES
from nbflow.utils.state import SLOT_HOLDING_STATES as SLOT_HOLDING_STATES
from nbflow.utils.state import TI_FINISHED_STATES as TI_FINISHED_STATES
from nbflow.utils.state import TI_STATES as TI_STATES
from nbflow.utils.state import DagRunState as DagRunState
from nbflow.utils.state import DagRunType as DagRunType
from nbflow.utils.state import TaskInstanceState as TaskInstanceState
