"""TCS005 ``graph_break()`` before a mutation: remove the call, disable the function (disable-writer).

A bare ``torch._dynamo.graph_break()`` does not keep the mutation out of the compiled graphs;
``@torch.compiler.disable`` on the function does. The call's comments (above it and at its end of line)
move to the next statement.
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import DISABLE_WRITER

from ..context import FileContext
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, is_disabled, resolves_to, single_statement

GRAPH_BREAK = ("torch._dynamo.graph_break", "torch.compiler.graph_break")


class DisableWriterFix(RuleFix):
    code = "TCS005"
    specs = (DISABLE_WRITER,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        if not ctx.holds(finding.path):
            return []
        if finding.in_root:
            short = ".".join(finding.function.split(".")[-2:])
            raise NotFixed(f"in the compiled root {short}: disabling it would run the whole model eagerly; move the "
                           "write into a helper")
        stmt = single_statement(ctx, finding.line)
        call = stmt.body[0].value if isinstance(stmt.body[0], cst.Expr) else None
        if not (isinstance(call, cst.Call) and resolves_to(ctx, call.func, *GRAPH_BREAK)):
            raise NotFixed("the graph_break() call is not a statement of its own")
        fn = ctx.function_at(finding.def_line)
        if fn is None:
            raise NotFixed("the enclosing function was not found")
        edits = EditSet().replace_statement(stmt, lambda updated: [])
        if not is_disabled(ctx, fn):
            edits.add_decorator(fn, f"{ctx.names.torch}.compiler.disable")
        return [Proposal(self.code, DISABLE_WRITER, ("disable-writer", ctx.path, finding.line), edits, finding.line,
                         f"graph_break() -> @torch.compiler.disable on {fn.name.value}", findings=[finding])]
