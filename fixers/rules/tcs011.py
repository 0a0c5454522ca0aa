"""TCS011 a state tensor regrown by ``torch.cat``: a preallocated buffer with a write head (``GrowingCat``,
always unsafe)."""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import PREALLOCATED_CACHE, GrowingCat

from ..context import FileContext, code
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, single_statement
from .tcs001 import method_of


class PreallocatedCacheFix(RuleFix):
    """``self.x = torch.cat([self.x, v], d)`` -> copy into a buffer of the maximum length (always unsafe).

    A helper method ``_grow_<x>`` does the write; the initialiser allocates the buffer (outside compiled
    code, marked static) when it assigns ``self.x`` a tensor, else the first write does.
    """

    code = "TCS011"
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
