"""TCS009: a call dynamo refuses inside a graph (mark_static_address, mark_dynamic, reset, deepcopy of tensors)."""

from __future__ import annotations

import ast

from ..values import TENSOR_KINDS, TENSOR_VALUE
from .base import Example, Hit, Rule, source_of

# @forbid_in_graph in torch/_dynamo/decorators.py (torch 2.13): tracing one fails the compile.
FORBIDDEN = {
    "torch._dynamo.mark_static_address", "torch._dynamo.mark_dynamic", "torch._dynamo.maybe_mark_dynamic",
    "torch._dynamo.mark_unbacked", "torch._dynamo.decorators.mark_static_address",
    "torch._dynamo.decorators.mark_dynamic", "torch._dynamo.decorators.maybe_mark_dynamic",
    "torch._dynamo.decorators.mark_unbacked", "torch.compiler.set_stance", "torch._dynamo.set_stance",
    "torch.compiler.set_enable_guard_collectives",
}
# Marked as skipped: a graph break at each call.
SKIPPED = {"torch.compiler.reset", "torch._dynamo.reset", "torch.compiler.cudagraph_mark_step_begin"}
# "Attempted to copy.deepcopy a tensor": a graph break when what is copied holds a tensor.
DEEPCOPY = {"copy.deepcopy"}


class ForbiddenInGraph(Rule):
    code = "TCS009"
    name = "forbidden-in-graph"
    consequence = "torch.compile fails ('Attempt to trace forbidden callable')"
    why = ("these functions configure dynamo from outside a graph; dynamo refuses to trace them (an error) or "
           "skips them (a graph break)")
    fix = ("call them before compiling, or guard them with `if not torch.compiler.is_compiling():` (e.g. in a "
           "cache allocated outside the compiled call)")
    what_it_does = ("Flags, on a compiled path, calls dynamo does not allow in a graph: "
                    "`torch._dynamo.mark_static_address`, `mark_dynamic`, `maybe_mark_dynamic`, `mark_unbacked`, "
                    "`torch.compiler.set_stance` (the compile fails), and `torch.compiler.reset`, "
                    "`torch._dynamo.reset`, `torch.compiler.cudagraph_mark_step_begin` (a graph break), and "
                    "`copy.deepcopy` of a value the code proves holds a tensor (a tensor, a container of them, or "
                    "an object whose class declares a tensor attribute, a few levels deep): a graph break. The usual "
                    "way in: a cache whose constructor marks its tensors static, built lazily inside `forward`.")
    why_bad = ("Measured on torch 2.13: tracing `mark_static_address` (or `mark_dynamic`, `maybe_mark_dynamic`, "
               "`mark_unbacked`, `set_stance`) raises `AssertionError: Attempt to trace forbidden callable` and "
               "the compiled call fails; `reset` and `cudagraph_mark_step_begin` are marked as skipped: a graph "
               "break at each call. `copy.deepcopy` of anything that holds a tensor is a graph break (\"Attempted to "
               "copy.deepcopy a tensor\"): audiocraft's `AttributeDropout.forward` deep-copies its conditioning "
               "attributes and breaks there.")
    use_instead_note = ("Mark tensors static where they are allocated outside the compiled call, under "
                        "`if not torch.compiler.is_compiling():`.")
    fix_safety = "Not rewritten."
    INVALID = (
        Example('''\
import torch


class Cache:
    def __init__(self, n):
        self.keys = torch.zeros(n, 4)
        torch._dynamo.mark_static_address(self.keys)  # TCS009: reached from forward below


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache = None

    def forward(self, x):
        if self.cache is None:
            self.cache = Cache(8)
        torch._dynamo.mark_dynamic(x, 0)  # TCS009
        return x + self.cache.keys[0]
'''),
        Example('''\
from copy import deepcopy
from dataclasses import dataclass, field

import torch


@dataclass
class Condition:
    wav: torch.Tensor


@dataclass
class Attributes:
    wav: dict[str, Condition] = field(default_factory=dict)


class Dropout(torch.nn.Module):
    def forward(self, x, samples: list[Attributes]):
        samples = deepcopy(samples)  # TCS009: a graph break
        return x * 2, samples
'''),
    )
    VALID = (
        Example('''\
import torch


class Cache:
    def __init__(self, n):
        self.keys = torch.zeros(n, 4)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache = Cache(8)  # built before compiling

    def forward(self, x):
        return x + self.cache.keys[0]
'''),
    )

    def check(self, stmt, ctx):
        for call in ctx.nodes(ast.Call):
            name = ctx.resolve_callee(call)
            if name in FORBIDDEN:
                yield Hit(call, f"`{source_of(call)}` inside a compiled call",
                          data={"kind": "forbidden", "call": name})
            elif name in SKIPPED:
                yield Hit(call, f"`{source_of(call)}` inside a compiled call", consequence="a graph break",
                          data={"kind": "skipped", "call": name})
            elif name in DEEPCOPY and call.args and _holds_tensor(ctx.value(call.args[0]), ctx):
                yield Hit(call, f"`{source_of(call)}` deep-copies tensors", consequence="a graph break",
                          data={"kind": "deepcopy", "call": name})


def _holds_tensor(val, ctx, depth: int = 3) -> bool:
    """``val`` is a tensor, holds one as an element, or is an object whose class declares a tensor
    attribute (or one of those), up to ``depth`` levels: what the code proves, nothing guessed."""
    if val.value == TENSOR_VALUE:
        return True
    if depth == 0:
        return False
    if val.elems is not None and _holds_tensor(val.elems, ctx, depth - 1):
        return True
    if val.items and any(_holds_tensor(item, ctx, depth - 1) for item in val.items):
        return True
    for name in val.classes:
        klass = ctx.index.lookup_class(name)
        if klass is None:
            continue
        for kind in klass.attrs.values():
            if kind.kind in TENSOR_KINDS:
                return True
            for inner in (*kind.classes, *kind.elems):
                nested = ctx.index.lookup_class(inner)
                if nested is not None and depth > 1 and any(k.kind in TENSOR_KINDS for k in nested.attrs.values()):
                    return True
    return False
