"""TCS001 state mutation: static marking (``StateWrite``).

``mark_static_address`` at the end of the initialiser that allocates a tensor written in place, and
``obj.x += v`` -> ``obj.x.add_(v)`` on it. The initialiser may be in another file than the finding:
each fix proposes only the edits of the file it is given (the planner hands a finding to its own file
and to its owner class's file).
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import STATIC_MARKING, StateWrite

from ..context import FileContext, code
from ..cstutil import is_self_attr
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, require, single_statement

IN_PLACE = {"+=": "add_", "-=": "sub_", "*=": "mul_", "/=": "div_"}


def method_of(ctx: FileContext, class_line: int, name: str) -> tuple[cst.ClassDef, cst.FunctionDef]:
    cls = ctx.class_at(class_line)
    if cls is None:
        raise NotFixed(f"class at line {class_line} not found")
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            return cls, stmt
    raise NotFixed(f"{cls.name.value}.{name} not found")


def _assigns_self(stmt: cst.CSTNode, attr: str) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, (cst.Assign, cst.AnnAssign)) and any(
            is_self_attr(t.target if isinstance(s, cst.Assign) else s.target, attr)
            for t in (s.targets if isinstance(s, cst.Assign) else [s])) for s in stmt.body)


class StaticMarkingFix(RuleFix):
    code = "TCS001"
    specs = (STATIC_MARKING,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        data: StateWrite = finding.data["fix"]
        require(data.tensor, unsafe_ok=False)
        proposals = []
        if data.owner is not None and ctx.holds(data.owner.path):
            proposals.append(self._mark(finding, data, ctx))
        if data.augmented and ctx.holds(finding.path):
            proposals.append(self._in_place(finding, data, ctx))
        return proposals

    def _mark(self, finding: Finding, data: StateWrite, ctx: FileContext) -> Proposal:
        key = ("static", data.owner.qualname, data.attr)
        if not data.allocator and data.dataclass_field:
            return self._mark_field(finding, data, ctx, key)
        if not data.allocator:
            raise NotFixed(f"no initialiser allocates `self.{data.attr}` with a torch call")
        cls, fn = method_of(ctx, data.owner.line, data.allocator)
        if not any(_assigns_self(stmt, data.attr) for stmt in fn.body.body):
            raise NotFixed(f"`self.{data.attr}` is allocated conditionally in {data.allocator}: marking at its end "
                           "could see another value")
        edits = EditSet().mark_static(fn, data.attr)
        return Proposal(self.code, STATIC_MARKING, key, edits, ctx.line_of(fn),
                        f"mark_static_address(self.{data.attr}) in {cls.name.value}.{data.allocator}",
                        findings=[finding])

    def _mark_field(self, finding: Finding, data: StateWrite, ctx: FileContext, key: tuple) -> Proposal:
        """A dataclass field set by the caller: mark it in ``__post_init__`` (added when there is none)."""
        cls = ctx.class_at(data.owner.line)
        if cls is None:
            raise NotFixed(f"class at line {data.owner.line} not found")
        post_init = next((s for s in cls.body.body if isinstance(s, cst.FunctionDef)
                          and s.name.value == "__post_init__"), None)
        edits = EditSet()
        if post_init is not None:
            edits.mark_static(post_init, data.attr)
        elif data.base_post_init:
            raise NotFixed("a base class defines __post_init__: a new one here would hide it")
        else:
            edits.mark_static_in_new_post_init(cls, data.attr)
        return Proposal(self.code, STATIC_MARKING, key, edits, ctx.line_of(cls),
                        f"mark_static_address(self.{data.attr}) in {cls.name.value}.__post_init__", findings=[finding])

    def _in_place(self, finding: Finding, data: StateWrite, ctx: FileContext) -> Proposal:
        stmt = single_statement(ctx, finding.line)
        aug = stmt.body[0]
        if not isinstance(aug, cst.AugAssign) or not isinstance(aug.target, cst.Attribute):
            raise NotFixed("not `obj.attr op= value`")
        method = IN_PLACE[data.augmented]

        def build(updated: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
            a = updated.body[0]
            call = cst.parse_expression(f"{code(a.target)}.{method}({code(a.value)})")
            return [updated.with_changes(body=[cst.Expr(call)])]

        edits = EditSet().replace_statement(stmt, build)
        return Proposal(self.code, STATIC_MARKING, ("in-place", ctx.path, finding.line), edits, finding.line,
                        f"`{data.augmented}` on a tensor attribute -> .{method}()", findings=[finding])
