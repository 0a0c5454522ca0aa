"""``--strategy graph-break`` for any finding: the helper holding it runs eagerly (eager-helper).

The smallest function holding the finding is the one the analysis names (``Finding.function``): the
function whose statement mutates state or reads tensor data on the host. It gets
``@torch.compiler.disable`` (innermost, under ``@property`` and friends), unless it is a compiled root
(``Finding.in_root``): disabling an ``nn.Module.forward`` would run the whole model eagerly.
"""

from __future__ import annotations

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import EAGER_HELPER

from ..context import FileContext
from ..edits import EditSet
from .base import NotFixed, Proposal, RuleFix, is_disabled


def _is_generator(fn: cst.FunctionDef) -> bool:
    found = False

    class Yields(cst.CSTVisitor):
        def visit_Yield(self, _node) -> None:
            nonlocal found
            found = True

        def visit_FunctionDef(self, node) -> bool:
            return node is fn

        def visit_Lambda(self, _node) -> bool:
            return False

    fn.visit(Yields())
    return found


class EagerHelperFix(RuleFix):
    code = "*"
    specs = (EAGER_HELPER,)

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        if not ctx.holds(finding.path):
            return []
        short = ".".join(finding.function.split(".")[-2:])
        if finding.function.split(".")[0] == "torch":
            # torch's own modules run while `import torch` is under way: the decorator would look up
            # torch.compiler before it exists (a circular import, measured on torch 2.13's source).
            raise NotFixed(f"{short} is part of torch itself: @torch.compiler.disable cannot run while torch "
                           "initialises")
        if finding.in_root:
            raise NotFixed(f"in the compiled root {short}: disabling it would run the whole model eagerly; move "
                           "the statement into a helper")
        if finding.runs_modules:
            raise NotFixed(f"{short} runs nn.Modules: disabling it would run them eagerly too; move the "
                           "statement into a helper")
        fn = ctx.function_at(finding.def_line)
        if fn is None:
            raise NotFixed("the enclosing function was not found")
        if fn.asynchronous is not None or _is_generator(fn):
            raise NotFixed(f"{short} is a generator or coroutine: its body runs outside the disabled call")
        edits = EditSet()
        if not is_disabled(ctx, fn):
            edits.add_decorator(fn, f"{ctx.names.torch}.compiler.disable")
        return [Proposal(finding.code, EAGER_HELPER, ("eager-helper", ctx.path, finding.def_line), edits,
                         finding.def_line, f"{short} runs eagerly (@torch.compiler.disable)", findings=[finding])]
