"""TCS004: Python control flow on a tensor value."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER
from ..values import HOST, INTSTATE, TENSOR_VALUE
from .base import Example, Hit, Rule, source_of


class TensorControlFlow(Rule):
    code = "TCS004"
    name = "tensor-control-flow"
    consequence = "a graph break (data-dependent branching)"
    why = ("branching on a tensor needs its value on the host (graph break); branching on a number read "
           "from a tensor or on mutable int state adds a guard: one recompile per outcome")
    fix = ("compute both sides and select with torch.where, use torch.cond, or check outside the compiled "
           "path (torch._check for asserts)")
    what_it_does = ("Flags `if`, `while`, `assert` and conditional expressions whose test is a tensor, a "
                    "number read from a tensor, or a Python int attribute the code mutates. Not flagged: an "
                    "`assert` on a tensor with no message or a constant one (dynamo turns it into "
                    "`torch._assert_async`, no break), and an `if` on a tensor whose body raises (TCS012).")
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
''', "a tensor in an `if`, and in an `assert` whose message is built at run time"),
    )
    VALID = (
        Example('''\
import torch


class Gate(torch.nn.Module):
    def forward(self, x, mask=None):
        x = torch.where(x.sum() > 0, x * 2, x)
        if mask is not None and x.dim() == 2:  # identity and shape tests are static
            x = x * mask
        assert (x > -100).all(), "underflow"  # a constant message: dynamo keeps it in the graph
        return x
'''),
    )

    def check(self, stmt, ctx):
        tests = []
        if isinstance(stmt, (ast.If, ast.While, ast.Assert)) and not raises_on_tensor(stmt, ctx):
            if not (isinstance(stmt, ast.Assert) and constant_message(stmt)
                    and ctx.value(stmt.test).value == TENSOR_VALUE):
                tests.append(stmt.test)
        for node in ctx.nodes(ast.IfExp, ast.comprehension):
            if isinstance(node, ast.IfExp):
                tests.append(node.test)
            elif isinstance(node, ast.comprehension):
                tests.extend(node.ifs)
        for test in tests:
            value = ctx.value(test).value
            if value in (TENSOR_VALUE, HOST, INTSTATE):
                what = {TENSOR_VALUE: "a tensor", HOST: "a number read from a tensor",
                        INTSTATE: "Python state the code mutates"}[value]
                kind = "assert" if isinstance(stmt, ast.Assert) and test is stmt.test else "branch"
                consequence = None if value == TENSOR_VALUE else "a guard: one recompile per outcome"
                data = {"kind": kind, "value": value, "expr": source_of(test, 200)}
                state = _guarded_state(test, ctx) if value == INTSTATE else None
                if state:
                    data["state"] = state  # the object state the guard is on (``Class.attr``)
                yield Hit(test, f"Python control flow on {what}: `{source_of(test)}`", consequence=consequence,
                          data=data)


def _guarded_state(test: ast.expr, ctx) -> str | None:
    """The one ``Class.attr`` of mutable Python state a test reads, if exactly one."""
    labels = set()
    for node in ast.walk(test):
        if isinstance(node, ast.Attribute) and ctx.value(node).value == INTSTATE:
            state = ctx.state(node)
            if state is not None and state.scope == "attribute":
                labels.add(state.label)
    return labels.pop() if len(labels) == 1 else None


def constant_message(stmt: ast.Assert) -> bool:
    """No message, or a literal one: dynamo rewrites such an assert on a tensor to _assert_async."""
    return stmt.msg is None or isinstance(stmt.msg, ast.Constant)


def raises_on_tensor(stmt: ast.stmt, ctx) -> bool:
    """``if <tensor>: ... raise ...`` with no else: TCS012's case."""
    return (isinstance(stmt, ast.If) and not stmt.orelse and bool(stmt.body)
            and isinstance(stmt.body[-1], ast.Raise) and ctx.value(stmt.test).value == TENSOR_VALUE)
