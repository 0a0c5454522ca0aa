"""TCS004: Python control flow on a tensor value."""

from __future__ import annotations

import ast

from ..callgraph import HOST, INTSTATE, TENSOR_VALUE
from ..fixdata import EAGER_HELPER
from .base import Example, Hit, Rule, source_of


class TensorControlFlow(Rule):
    code = "TCS004"
    name = "tensor-control-flow"
    why = ("branching on a tensor needs its value on the host (graph break); branching on a number read "
           "from a tensor or on mutable int state adds a guard: one recompile per outcome")
    fix = ("compute both sides and select with torch.where, use torch.cond, or check outside the compiled "
           "path (torch._check for asserts)")
    what_it_does = ("Flags `if`, `while`, `assert` and conditional expressions whose test is a tensor, a "
                    "number read from a tensor, or a Python int attribute the code mutates.")
    why_bad = ("`if t.any():` calls `bool()` on a tensor: dynamo must materialise it, which ends the graph "
               "(data-dependent control flow). `assert end <= n, f\"...\"` with a tensor `end` does the same "
               "for every call. A test on host numbers is guarded: each new outcome is a recompile.")
    use_instead_note = "Select with `torch.where`, or hoist the check out of the compiled region."
    fix_safety = ("No tensor-index rewrite: the right form depends on both branches. A model-family recipe may "
                  "rewrite a known shape (Toto's `is_causal=... seq_pos_offset == 0` becomes a mask).")
    fixes = (EAGER_HELPER,)
    INVALID = (
        Example('''\
import torch


class Gate(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # TCS004
            x = x * 2
        assert x.max() < 100, f"overflow {x.max()}"  # TCS004
        return x
'''),
    )
    VALID = (
        Example('''\
import torch


class Gate(torch.nn.Module):
    def forward(self, x, mask=None):
        x = torch.where(x.sum() > 0, x * 2, x)
        if mask is not None and x.dim() == 2:  # identity and shape tests are static
            x = x * mask
        return x
'''),
    )

    def check(self, stmt, an):
        tests = []
        if isinstance(stmt, (ast.If, ast.While, ast.Assert)):
            tests.append(stmt.test)
        for node in self.nodes(stmt, an, ast.IfExp, ast.comprehension):
            if isinstance(node, ast.IfExp):
                tests.append(node.test)
            elif isinstance(node, ast.comprehension):
                tests.extend(node.ifs)
        for test in tests:
            value = an.kind_of(test).value
            if value in (TENSOR_VALUE, HOST, INTSTATE):
                what = {TENSOR_VALUE: "a tensor", HOST: "a number read from a tensor",
                        INTSTATE: "mutable Python int state"}[value]
                kind = "assert" if isinstance(stmt, ast.Assert) and test is stmt.test else "branch"
                yield Hit(test, f"Python control flow on {what}: `{source_of(test)}`",
                          data={"kind": kind, "value": value, "expr": source_of(test, 200)})
