"""TCS005: ``torch._dynamo.graph_break()`` used to isolate a mutation (it does not)."""

from __future__ import annotations

import ast

from ..project import dotted
from ..fixdata import DISABLE_WRITER
from ..fixfacts import graph_break_call
from .base import Example, Hit, Rule

GRAPH_BREAK = {"torch._dynamo.graph_break"}


def _is_mutation(node: ast.AST) -> bool:
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, (ast.Subscript, ast.Attribute)) for t in targets)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name = node.func.attr
        return name.endswith("_") and not name.startswith("_")
    return False


class GraphBreakBeforeMutation(Rule):
    code = "TCS005"
    name = "graph-break-does-not-isolate"
    consequence = "the mutation is not isolated: CUDA graphs still skip"
    why = ("a graph break only splits the frame: the resumed graph still mutates the same input, so CUDA "
           "graphs still skip it")
    fix = ("use the tensor-index form (index_copy_ into static buffers), or move the mutation into a "
           "function decorated @torch.compiler.disable")
    what_it_does = "Flags `torch._dynamo.graph_break()` followed, in the same function, by an in-place write."
    why_bad = ("Measured on torch 2.13: the graph that resumes after the break receives the mutated tensor "
               "as an input and still writes it, so the mutation is not isolated; "
               "`@torch.compiler.disable` on the mutating function does isolate it, at the cost of a graph "
               "break per call.")
    use_instead_note = "Mark the state static and write with `index_copy_`, or disable compilation of the writer."
    fix_safety = "Behaviour is unchanged; speed is not (a graph break per call of the disabled function)."
    fixes = (DISABLE_WRITER,)
    INVALID = (
        Example('''\
import torch


class Cache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)

    def write(self, pos, k):
        torch._dynamo.graph_break()  # TCS005
        self.keys[pos] = k


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.write(0, x)
        return x
''',
                fixed='''\
import torch


class Cache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)
        # written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)

    @torch.compiler.disable
    def write(self, pos, k):
        # TCS005
        self.keys[pos] = k


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.write(0, x)
        return x
'''),
    )
    VALID = (
        Example('''\
import torch


class Cache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)

    @torch.compiler.disable
    def write(self, pos, k):
        self.keys[pos] = k


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        torch._dynamo.graph_break()  # nothing is mutated after it here
        cache.write(0, x)
        return x
'''),
    )

    def check(self, stmt, ctx):
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            return
        name = dotted(stmt.value.func)
        if not name or ctx.resolve(name) not in GRAPH_BREAK:
            return
        later = [n for n in ast.walk(ctx.func.node)
                 if getattr(n, "lineno", 0) > stmt.end_lineno and _is_mutation(n)]
        if later:
            first = min(later, key=lambda n: n.lineno)
            yield Hit(stmt.value, f"torch._dynamo.graph_break() does not isolate the mutation at line {first.lineno}",
                      data={"kind": "graph-break", "mutation_line": first.lineno,
                            "fix": graph_break_call(first.lineno)})
