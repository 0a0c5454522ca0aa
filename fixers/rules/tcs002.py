"""TCS002 host read: ``i = int(t.item())`` used only to index tensors keeps ``i`` a tensor (keep-tensor).

Consumes :class:`flake8_compile_safe.fixdata.HostValue`. The binding becomes ``i = t.clone()`` (a copy:
``t`` may be advanced in place later, as the host number was a snapshot); every use is rewritten by
the TCS003 fix of its line, which this fix enables, and it applies only if all of them do.
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import KEEP_TENSOR, HostValue

from ..context import FileContext, code
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, atom, require, single_statement


def _tensor_of_read(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """``t`` in ``int(t.item())``, ``t.item()``, ``int(t)``."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "item" \
            and not node.args:
        return node.func.value
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "int" \
            and len(node.args) == 1:
        inner = node.args[0].value
        return _tensor_of_read(inner) if isinstance(inner, cst.Call) else inner
    return None


class KeepTensorFix(RuleFix):
    code = "TCS002"
    specs = (KEEP_TENSOR,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        data: HostValue | None = finding.data.get("fix")
        if not isinstance(data, HostValue):
            raise NotFixed("a host read that is not bound to a local: what it feeds decides the tensor form")
        if not ctx.holds(finding.path):
            return []
        if not data.var:
            raise NotFixed("the value read is not bound to a local by itself (`i = t.item()`)")
        require(data.index_only, unsafe_ok=False)
        unsafe = require(data.receiver, "the value read from may not be a torch tensor: ")
        require(data.scalar_int, "the tensor's dtype is not proven to be an integer: ", unsafe_ok=False)
        stmt = single_statement(ctx, finding.line)
        assign = stmt.body[0]
        if not isinstance(assign, cst.Assign) or _tensor_of_read(assign.value) is None:
            raise NotFixed("not `name = <read>`")

        def build(updated: cst.BaseExpression) -> cst.BaseExpression:
            tensor = _tensor_of_read(updated)
            return cst.parse_expression(f"{atom(tensor)}.clone()")

        edits = EditSet().replace_expr(assign.value, build)
        return [Proposal(self.code, KEEP_TENSOR, ("keep-tensor", ctx.path, finding.def_line, data.var), edits,
                         finding.line, f"`{data.var} = {code(assign.value)}` stays a tensor", unsafe_why=unsafe,
                         findings=[finding], needs_lines=data.uses)]
