"""TCS003 data-dependent index: tensor-bounded slice writes -> ``index_copy_``, reads -> ``index_select``.

Consumes :class:`flake8_compile_safe.fixdata.SliceAccess`. A bound that is a host number read from a
tensor (``start = int(t.item())``) or a Python-int counter is rewritten only together with the fix that
keeps that value a tensor (TCS002 keep-tensor, TCS001 tensor-counter): alone it would gain nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import INDEX_COPY, INDEX_SELECT, SliceAccess

from ..context import FileContext, code
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, atom, has_call, require, single_statement

SHAPE_CALLS = {"size", "dim", "numel"}


@dataclass
class SubscriptForm:
    """``base[lead..., :, ..., lo:hi, :, ...]``: leading scalar indices, full slices, one bounded slice."""

    base: cst.BaseExpression
    lead: list[cst.BaseExpression]
    dim: int  # the bounded slice's dimension in ``base[lead]``
    lower: cst.BaseExpression | None
    upper: cst.BaseExpression | None

    @classmethod
    def of(cls, sub: cst.Subscript) -> "SubscriptForm":
        lead: list[cst.BaseExpression] = []
        dim, bounded = 0, None
        for el in sub.slice:
            s = el.slice
            if isinstance(s, cst.Index):
                if bounded is not None or dim or s.star is not None or isinstance(s.value, cst.Ellipsis):
                    raise NotFixed("an index after the slice, `...` or a starred index")
                lead.append(s.value)
            elif isinstance(s, cst.Slice):
                if s.step is not None:
                    raise NotFixed("a slice with a step")
                if s.lower is None and s.upper is None:
                    if bounded is None:
                        dim += 1
                elif bounded is None:
                    bounded = s
                else:
                    raise NotFixed("more than one bounded slice")
        if bounded is None:
            raise NotFixed("no bounded slice")
        return cls(sub.value, lead, dim, bounded.lower, bounded.upper)

    def view_code(self) -> str:
        base = code(self.base)
        return f"{base}[{', '.join(code(i) for i in self.lead)}]" if self.lead else base


def _pure(node: cst.CSTNode | None) -> bool:
    """No call but sizes: dropping or repeating it changes nothing."""
    if node is None:
        return True
    found = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value in SHAPE_CALLS) and \
                    not (isinstance(func, cst.Name) and func.value == "len"):
                found.append(call)

    node.visit(Calls())
    return not found


class SliceFix(RuleFix):
    code = "TCS003"
    specs = (INDEX_COPY, INDEX_SELECT)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        data: SliceAccess | None = finding.data.get("fix")
        if not isinstance(data, SliceAccess):
            raise NotFixed("no fix data")
        if not ctx.holds(finding.path):
            return []
        enabled_by = None
        if data.bound_kind == "host":
            if not data.host_var:
                raise NotFixed("the bound is a number read from a tensor elsewhere: keep it a tensor there")
            enabled_by = ("keep-tensor", ctx.path, finding.def_line, data.host_var)
        elif data.bound_kind == "intstate":
            counter = finding.data.get("counter")
            if counter is None:
                raise NotFixed("the bound is a Python int attribute that is not a plain counter")
            enabled_by = ("tensor-counter", counter.owner.qualname, counter.attr)
        if data.store:
            proposal = self._write(finding, data, ctx)
        else:
            proposal = self._read(finding, data, ctx)
        proposal.enabled_by = enabled_by
        return [proposal]

    # -- writes --------------------------------------------------------------------------------
    def _write(self, finding: Finding, data: SliceAccess, ctx: FileContext) -> Proposal:
        unsafe = [require(data.receiver, "the subscripted value may not be a torch tensor: ")]
        require(data.lead_ints, "an index before the slice may be a tensor (the write would go to a copy): ",
                unsafe_ok=False)
        if not data.length:
            raise NotFixed(data.length_why)
        unsafe.append(require(data.value_tensor, "the assigned value may not be a tensor: "))
        stmt = single_statement(ctx, finding.line)
        assign = stmt.body[0]
        if not isinstance(assign, cst.Assign) or len(assign.targets) != 1 \
                or not isinstance(assign.targets[0].target, cst.Subscript):
            raise NotFixed("not a single slice assignment")
        form = SubscriptForm.of(assign.targets[0].target)
        if form.dim != data.dim:
            raise NotFixed("the subscript does not have the form the analysis saw")
        if not _pure(form.upper):
            raise NotFixed("the upper bound calls something that would no longer run")
        fn = ctx.enclosing(stmt, cst.FunctionDef)
        length = data.length

        def build(updated: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
            a = updated.body[0]
            form_now = SubscriptForm.of(a.targets[0].target)
            taken: set[str] = set()
            out: list[cst.BaseStatement] = []
            value = a.value
            if has_call(value):  # evaluated once, first, as the assignment did
                name = ctx.fresh_name(fn, "new_values", taken)
                out.append(cst.parse_statement(f"{name} = {code(value)}\n"))
                value = cst.Name(name)
            torch, d = ctx.names.torch, form_now.dim
            number = isinstance(value, (cst.Integer, cst.Float)) or (
                isinstance(value, cst.Name) and value.value in ("True", "False"))
            val = atom(value)
            own_length = number or length in (f"{val}.shape[{d}]", f"{val}.size({d})")
            view = form_now.view_code()
            if form_now.lead or has_call(form_now.base) or not (own_length or isinstance(form_now.base, cst.Name)):
                name = ctx.fresh_name(fn, "target", taken)  # a view (or a long name) evaluated once
                out.append(cst.parse_statement(f"{name} = {view}\n"))
                view = name
            index = f"{atom(form_now.lower) if form_now.lower is not None else '0'} + " \
                    f"{torch}.arange({length}, device={view}.device)"
            if number:
                call = f"{view}.index_fill_({d}, {index}, {code(value)})"
            else:
                moved = f"{val}.to({view})"
                if not own_length:  # broadcast as the slice assignment did
                    moved += f".expand({'*' + view + f'.shape[:{d}], ' if d else ''}{length}, *{view}.shape[{d + 1}:])"
                call = f"{view}.index_copy_({d}, {index}, {moved})"
            out.append(updated.with_changes(body=[cst.Expr(cst.parse_expression(call))]))
            return out

        edits = EditSet().replace_statement(stmt, build)
        why = "; ".join(u for u in unsafe if u)
        return Proposal(self.code, INDEX_COPY, ("slice", ctx.path, finding.line, finding.col), edits, finding.line,
                        "slice write with tensor bounds -> index_copy_", unsafe_why=why, findings=[finding])

    # -- reads ---------------------------------------------------------------------------------
    def _read(self, finding: Finding, data: SliceAccess, ctx: FileContext) -> Proposal:
        unsafe = [require(data.receiver, "the subscripted value may not be a torch tensor: ")]
        require(data.lead_ints, "an index before the slice may be a tensor: ", unsafe_ok=False)
        sub = ctx.node_at(cst.Subscript, finding.line, finding.col)
        if sub is None:
            raise NotFixed("subscript not found at the finding")
        parent = ctx.parent(sub)
        if isinstance(parent, (cst.Assign, cst.Return, cst.AnnAssign)):
            unsafe.append("the result is stored or returned: it becomes a copy, not a view, and a write "
                          "through it would no longer reach the tensor")
        single = _single_index(sub)
        if single is None:
            if not data.length:
                raise NotFixed(data.length_why)
            form = SubscriptForm.of(sub)
            if not _pure(form.upper):
                raise NotFixed("the upper bound calls something that would no longer run")
        length = data.length

        def build(updated: cst.Subscript) -> cst.BaseExpression:
            torch = ctx.names.torch
            index_now = _single_index(updated)
            if index_now is not None:
                return cst.parse_expression(f"{atom(updated.value)}.index_select(0, {atom(index_now)}.view(1))"
                                            ".squeeze(0)")
            f = SubscriptForm.of(updated)
            view = f.view_code()
            start = atom(f.lower) if f.lower is not None else "0"
            return cst.parse_expression(f"{view}.index_select({f.dim}, {start} + {torch}.arange({length}, "
                                        f"device={view}.device))")

        edits = EditSet().replace_expr(sub, build)
        return Proposal(self.code, INDEX_SELECT, ("slice", ctx.path, finding.line, finding.col), edits,
                        finding.line, "slice read with tensor bounds -> index_select",
                        unsafe_why="; ".join(u for u in unsafe if u), findings=[finding])


def _single_index(sub: cst.Subscript) -> cst.BaseExpression | None:
    """``i`` in ``buf[i]`` or ``buf[i, :, :]``: one index first, full slices after."""
    first = sub.slice[0].slice
    if not isinstance(first, cst.Index) or first.star is not None:
        return None
    for el in sub.slice[1:]:
        s = el.slice
        if not (isinstance(s, cst.Slice) and s.lower is None and s.upper is None and s.step is None):
            return None
    return first.value
