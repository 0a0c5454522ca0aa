"""TCS012: a tensor condition that raises (``if torch.isnan(x).any(): raise ...``)."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER
from ..values import TENSOR_VALUE
from .base import Example, Hit, Rule, source_of


class TensorCheckRaises(Rule):
    code = "TCS012"
    name = "tensor-check-raises"
    consequence = "a graph break (data-dependent branching) on every call"
    why = "raising needs the condition's value on the host: dynamo breaks the graph to read it"
    fix = ("assert inside the graph with torch._assert_async(~cond, 'msg'), or run the check outside the "
           "compiled call")
    what_it_does = ("Flags `if <tensor condition>: ... raise ...` (no `else`) on a compiled path: a validity check "
                    "on tensor values, such as `if torch.isnan(x).any(): raise ValueError(...)`.")
    why_bad = ("Measured on torch 2.13: the `if` is data-dependent branching, a graph break each call (inside a "
               "helper, the break is at the call). `torch._assert_async(~torch.isnan(x).any(), 'nan')` compiles "
               "into the graph with no break; so does `assert cond, \"constant message\"`.")
    use_instead_note = "Assert inside the graph, or check outside it."
    fix_safety = ("No tensor-index rewrite: `_assert_async` reports the failure asynchronously, not as the same "
                  "exception.")
    fixes = (EAGER_HELPER,)
    INVALID = (
        Example('''\
import torch


def check_finite(x):
    if not torch.isfinite(x).all():  # TCS012
        raise ValueError("non-finite values")


class Model(torch.nn.Module):
    def forward(self, x):
        if torch.isnan(x).any():  # TCS012
            raise ValueError("nan in input")
        check_finite(x)
        return x * 2
'''),
    )
    VALID = (
        Example('''\
import torch


class Model(torch.nn.Module):
    def forward(self, x, strict: bool = False):
        torch._assert_async(~torch.isnan(x).any(), "nan in input")
        if strict and x.dim() != 2:  # a static test
            raise ValueError("expected a matrix")
        return x * 2
'''),
    )

    def check(self, stmt, ctx):
        if (isinstance(stmt, ast.If) and not stmt.orelse and stmt.body and isinstance(stmt.body[-1], ast.Raise)
                and ctx.value(stmt.test).value == TENSOR_VALUE):
            yield Hit(stmt.test, f"`if {source_of(stmt.test)}: raise`: a check on tensor values",
                      data={"kind": "raise", "expr": source_of(stmt.test, 200)})
