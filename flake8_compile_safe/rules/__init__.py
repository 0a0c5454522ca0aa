"""Stage 5, the rules. Codes are fixed; ``ALL_RULES`` is the registry."""

from .base import Example, Hit, Rule
from .tcs001_state_mutation import StateMutation
from .tcs002_host_sync import HostSync
from .tcs003_data_dependent_index import DataDependentIndex
from .tcs004_tensor_control_flow import TensorControlFlow
from .tcs005_graph_break_mutation import GraphBreakBeforeMutation
from .tcs006_side_effect_io import SideEffectIO
from .tcs007_data_dependent_argument import DataDependentArgument

ALL_RULES: tuple[Rule, ...] = (
    StateMutation(), HostSync(), DataDependentIndex(), TensorControlFlow(), GraphBreakBeforeMutation(),
    SideEffectIO(), DataDependentArgument(),
)
RULES_BY_CODE = {rule.code: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "Example", "Hit", "Rule"]
