"""Stage 5, the rules. Codes are fixed; ``ALL_RULES`` is the registry."""

from .base import Example, Hit, Rule
from .context import RuleContext, State
from .tcs001_state_mutation import StateMutation
from .tcs002_host_sync import HostSync
from .tcs003_data_dependent_index import DataDependentIndex
from .tcs004_tensor_control_flow import TensorControlFlow
from .tcs005_graph_break_mutation import GraphBreakBeforeMutation
from .tcs006_side_effect_io import SideEffectIO
from .tcs007_data_dependent_argument import DataDependentArgument
from .tcs008_data_dependent_shape import DataDependentShape
from .tcs009_forbidden_in_graph import ForbiddenInGraph
from .tcs010_python_state_write import PythonStateWrite
from .tcs011_state_created import StateCreated
from .tcs012_tensor_check_raises import TensorCheckRaises
from .tcs013_untraced_module import UntracedModule
from .reached import ReachedFacts
from .tcs014_comprehension_in_skipped_frame import ComprehensionInSkippedFrame
from .tcs015_step_int_parameter import StepIntParameter
from .tcs016_grown_state_parameter import GrownStateParameter

ALL_RULES: tuple[Rule, ...] = (
    StateMutation(), HostSync(), DataDependentIndex(), TensorControlFlow(), GraphBreakBeforeMutation(),
    SideEffectIO(), DataDependentArgument(), DataDependentShape(), ForbiddenInGraph(), PythonStateWrite(),
    StateCreated(), TensorCheckRaises(), UntracedModule(), ComprehensionInSkippedFrame(), StepIntParameter(),
    GrownStateParameter(),
)
RULES_BY_CODE = {rule.code: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "Example", "Hit", "ReachedFacts", "Rule", "RuleContext", "State"]
