"""TCS010 Python state: a Python-int counter used only as a tensor index becomes a 0-d long tensor
(``IntCounter``), every use rewritten in its class(es). The counter may be in another file than the
finding: the fix proposes only the edits of the file it is given.
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import TENSOR_COUNTER, IntCounter

from ..context import FileContext, code
from ..cstutil import is_self_attr
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, require


class CounterFix(RuleFix):
    code = "TCS010"
    specs = (TENSOR_COUNTER,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        data: IntCounter | None = finding.data.get("counter") or finding.data.get("fix")
        if not isinstance(data, IntCounter):
            raise NotFixed("not a plain Python-int counter")
        if not ctx.holds(data.owner.path):
            return []
        require(data.uses, unsafe_ok=False)
        edits, reads = EditSet(), []
        torch = ctx.names.torch
        for line in data.class_lines:
            cls = ctx.class_at(line)
            if cls is None:
                raise NotFixed(f"class at line {line} not found")
            for node in _self_attrs(cls, data.attr):
                self._use(node, data, ctx, edits, reads, torch)
        if not edits.statements:
            raise NotFixed("its initialisation was not found")
        unsafe = ("read as a tensor index at line(s) " + ", ".join(map(str, reads)) +
                  ": the result becomes a copy, not a view") if reads else ""
        return [Proposal(self.code, TENSOR_COUNTER, ("tensor-counter", data.owner.qualname, data.attr), edits,
                         data.init_line, f"`self.{data.attr}` becomes a tensor counter", unsafe_why=unsafe,
                         findings=[finding])]

    def _use(self, node: cst.Attribute, data: IntCounter, ctx: FileContext, edits: EditSet, reads: list,
             torch: str) -> None:
        parent = ctx.parent(node)
        line = ctx.line_of(node)
        if isinstance(parent, cst.AssignTarget):
            stmt = ctx.parent(ctx.parent(parent))
            assign = ctx.parent(parent)
            value = code(assign.value)
            if line == data.init_line:
                fn = ctx.enclosing(node, cst.FunctionDef)
                if data.owner.is_module and not _after_super_init(fn, stmt):
                    raise NotFixed(f"`self.{data.attr}` is set before super().__init__(): a buffer cannot be")
                if data.owner.is_module:
                    new = (f'self.register_buffer("{data.attr}", {torch}.tensor({value}, dtype={torch}.long), '
                           'persistent=False)')
                else:
                    device = f", device=self.{data.device_attr}.device" if data.device_attr else ""
                    new = f"self.{data.attr} = {torch}.tensor({value}, dtype={torch}.long{device})"
                    edits.mark_static(fn, data.attr)
            else:
                new = f"self.{data.attr}.fill_({value})"
            edits.replace_statement(stmt, lambda updated, new=new: [updated.with_changes(body=[
                cst.parse_statement(new + "\n").body[0]])])
            return
        if isinstance(parent, cst.AugAssign):
            method = "add_" if isinstance(parent.operator, cst.AddAssign) else "sub_"
            stmt = ctx.parent(parent)
            edits.replace_statement(stmt, lambda updated, method=method: [updated.with_changes(body=[cst.Expr(
                cst.parse_expression(f"{code(updated.body[0].target)}.{method}({code(updated.body[0].value)})"))])])
            return
        sub = ctx.enclosing(node, cst.Subscript)
        if sub is None:
            raise NotFixed(f"a use at line {line} is not an index")
        if isinstance(ctx.parent(sub), cst.AssignTarget):
            edits.replace_expr(node, lambda updated: cst.parse_expression(f"{code(updated)}.view(1)"))
        else:
            reads.append(line)
            edits.replace_expr(sub, lambda updated: cst.parse_expression(
                f"{code(updated.value)}.index_select(0, {code(updated.slice[0].slice.value)}.view(1)).squeeze(0)"))


def _after_super_init(fn: cst.FunctionDef, stmt: cst.CSTNode) -> bool:
    """``stmt`` is a top-level statement of ``fn`` after its ``super().__init__(...)`` call."""
    seen_super = False
    for s in fn.body.body:
        if s is stmt:
            return seen_super
        if "super().__init__" in code(s) or "super(" in code(s) and "__init__" in code(s):
            seen_super = True
    return False


def _self_attrs(cls: cst.ClassDef, attr: str) -> list[cst.Attribute]:
    found: list[cst.Attribute] = []

    class Visit(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if is_self_attr(node, attr):
                found.append(node)

    cls.visit(Visit())
    return found
