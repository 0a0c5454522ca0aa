"""TCS001 state mutation: static marking, tensor counters, preallocated caches.

* :class:`StaticMarkingFix` (``StateWrite``): ``mark_static_address`` at the end of the initialiser
  that allocates a tensor written in place, and ``obj.x += v`` -> ``obj.x.add_(v)`` on it;
* :class:`CounterFix` (``IntCounter``): a Python-int counter used as a tensor index becomes a 0-d long
  tensor, every use rewritten in its class(es);
* :class:`PreallocatedCacheFix` (``GrowingCat``, unsafe): ``self.x = torch.cat([self.x, v], d)`` writes
  into a buffer of the maximum length instead.

The initialiser may be in another file than the finding: each fix proposes only the edits of the
file it is given (the planner hands a finding to its own file and to its owner class's file).
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import (
    PREALLOCATED_CACHE, STATIC_MARKING, TENSOR_COUNTER, GrowingCat, IntCounter, StateWrite,
)

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


class CounterFix(RuleFix):
    code = "TCS001"
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


class PreallocatedCacheFix(RuleFix):
    """``self.x = torch.cat([self.x, v], d)`` -> copy into a buffer of the maximum length (always unsafe).

    A helper method ``_grow_<x>`` does the write; the initialiser allocates the buffer (outside compiled
    code, marked static) when it assigns ``self.x`` a tensor, else the first write does.
    """

    code = "TCS001"
    specs = (PREALLOCATED_CACHE,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        data: GrowingCat = finding.data["fix"]
        if not ctx.holds(finding.path):
            return []
        if not ctx.holds(data.owner.path):
            raise NotFixed("the class's initialiser is in another file")
        if not data.max_len:
            raise NotFixed(f"a growing cache, but {data.max_len_why}: pass a maximum length to the initialiser "
                           "(`max_len`) to get a preallocated buffer")
        cls, init = method_of(ctx, data.owner.line, data.init_method)
        stmt = single_statement(ctx, finding.line)
        taken = ctx.names_in_function(cls)
        attr, d, torch = data.attr, data.dim, ctx.names.torch
        buffer, view, max_len, grow = (ctx.fresh_name(None, f"_{attr}_{part}", taken)
                                       for part in ("buffer", "view", "max_len", "grow"))
        grow = ctx.fresh_name(None, f"_grow_{attr}", taken)
        edits = EditSet().add_method(cls, (
            f"def {grow}(self, new):\n"
            f'    """``self.{attr} = torch.cat([self.{attr}, new], {d})`` into a preallocated buffer."""\n'
            f"    if self.{buffer} is None or self.{view} is not self.{attr}:  # first write, or replaced\n"
            f"        shape = list(self.{attr}.shape)\n"
            f"        shape[{d}] = self.{max_len}\n"
            f"        self.{buffer} = self.{attr}.new_zeros(shape)\n"
            f"        self.{buffer}.narrow({d}, 0, self.{attr}.shape[{d}]).copy_(self.{attr})\n"
            f"        if not {torch}.compiler.is_compiling():\n"
            f"            {torch}._dynamo.mark_static_address(self.{buffer})\n"
            f"    written = self.{attr}.shape[{d}]\n"
            f"    self.{buffer}.narrow({d}, written, new.shape[{d}]).copy_(new)\n"
            f"    self.{attr} = self.{view} = self.{buffer}.narrow({d}, 0, written + new.shape[{d}])\n"))
        lines = [f"# preallocated storage of self.{attr} (compile-safe-fix)", f"self.{buffer} = None",
                 f"self.{view} = None", f"self.{max_len} = {data.max_len}"]
        if data.allocated_in_init:
            lines.append(f"self.{grow}(self.{attr}.narrow({d}, 0, 0))  # allocate now, outside compiled code")
        edits.append_statements(init, lines)

        def build(updated: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
            appended = updated.body[0].value.args[0].value.elements[1].value
            return [updated.with_changes(body=[cst.Expr(cst.parse_expression(f"self.{grow}({code(appended)})"))])]

        edits.replace_statement(stmt, build)
        return [Proposal(self.code, PREALLOCATED_CACHE, ("preallocated", data.owner.qualname, attr), edits,
                         finding.line, f"growing `self.{attr}` -> preallocated buffer ({data.max_len_why})",
                         unsafe_why=PREALLOCATED_CACHE.unsafe_when, findings=[finding])]
