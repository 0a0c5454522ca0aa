"""The rule fixes: which fix a finding gets, under which strategy. One module per rule.

Under ``--strategy tensor-index`` a finding's typed payload (``Finding.data["fix"]``, a
``flake8_compile_safe.fixdata`` record) picks the fix; under ``--strategy graph-break`` every
hazard in a helper runs that helper eagerly (:mod:`.eager`), and TCS005's own fix applies under both.
"""

from __future__ import annotations

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import (
    GRAPH_BREAK, GraphBreakCall, GrowingCat, HostValue, IntCounter, SliceAccess, StateWrite,
)
from flake8_compile_safe.rules import RULES_BY_CODE

from .base import NotFixed, Proposal, RuleFix
from .eager import EagerHelperFix
from .tcs001 import StaticMarkingFix
from .tcs002 import KeepTensorFix
from .tcs003 import SliceFix
from .tcs005 import DisableWriterFix
from .tcs010 import CounterFix
from .tcs011 import PreallocatedCacheFix

BY_PAYLOAD: dict[type, RuleFix] = {
    StateWrite: StaticMarkingFix(), IntCounter: CounterFix(), GrowingCat: PreallocatedCacheFix(),
    SliceAccess: SliceFix(), HostValue: KeepTensorFix(), GraphBreakCall: DisableWriterFix(),
}
EAGER = EagerHelperFix()
EAGER_CODES = {code for code, rule in RULES_BY_CODE.items() if any(s.strategy == GRAPH_BREAK for s in rule.fixes)}


def fixes_for(finding: Finding, strategy: str) -> list[RuleFix]:
    """The fixes to try for ``finding``; raises NotFixed (why) when there is none."""
    payload = finding.data.get("fix")
    if strategy == GRAPH_BREAK:
        if isinstance(payload, GraphBreakCall):
            return [BY_PAYLOAD[GraphBreakCall]]
        if finding.code in EAGER_CODES:
            return [EAGER]
        raise NotFixed(_no_fix(finding, strategy))
    counter = finding.data.get("counter")
    if isinstance(counter, IntCounter):
        return [CounterFix()]
    fix = BY_PAYLOAD.get(type(payload))
    if fix is None:
        raise NotFixed(_no_fix(finding, strategy))
    return [fix]


def _no_fix(finding: Finding, strategy: str) -> str:
    rule = RULES_BY_CODE.get(finding.code)
    eager = "; --strategy graph-break runs its helper eagerly"
    state = finding.data.get("state_kind")
    if finding.code == "TCS010" and state and strategy != GRAPH_BREAK:
        return f"Python {state} state written on the compiled path: no tensor form is known for it{eager}"
    if rule is not None and finding.code in EAGER_CODES and strategy != GRAPH_BREAK:
        return f"no tensor-index rewrite for this shape (the right tensor form depends on what it feeds){eager}"
    if rule is not None and rule.fix_safety:
        return f"no automatic fix: {rule.fix_safety}"
    return "no automatic fix"


def targets(finding: Finding, strategy: str) -> set[str]:
    """Files a fix of ``finding`` may edit: its own, and (tensor-index) its state's owner class's."""
    out = {finding.path}
    if strategy == GRAPH_BREAK:
        return out
    for key in ("fix", "counter"):
        owner = getattr(finding.data.get(key), "owner", None)
        if owner is not None:
            out.add(owner.path)
    return out


__all__ = ["NotFixed", "Proposal", "RuleFix", "fixes_for", "targets"]
