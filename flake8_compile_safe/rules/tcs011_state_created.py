"""TCS011: module state created, or a state tensor regrown, on a compiled path."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER, PREALLOCATED_CACHE
from ..fixfacts import growing_cat
from ..values import INIT_METHODS, MODULE, NONE, TENSOR_KINDS, TENSOR_VALUE, dotted
from .base import Example, Hit, Rule

REGISTERS = {"register_buffer", "register_parameter", "add_module", "register_module"}
PARAMETER_CLASSES = {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}
CONCAT = {"torch.cat", "torch.concat", "torch.concatenate", "torch.hstack", "torch.vstack", "torch.stack"}
CREATED = "a recompile on the next call (dynamo guards on it)"
GROWN = "a recompile per new length, then one CUDA graph per length"


class StateCreated(Rule):
    code = "TCS011"
    name = "state-created-on-compiled-path"
    consequence = CREATED
    why = ("dynamo guards on the attributes it reads: creating or rebinding state inside the compiled call "
           "changes what the next call sees, so its guards fail and it recompiles")
    fix = ("create buffers, parameters, submodules and caches in __init__ (or before compiling) at their full size, "
           "and write into them in place")
    what_it_does = ("Flags, on a compiled path: `register_buffer` / `register_parameter` / `add_module`; "
                    "`nn.Parameter(...)` constructed; an attribute that code outside compiled methods leaves "
                    "`None` (or never sets) first assigned a tensor, a submodule or a project object (a cache "
                    "built lazily in `forward`); and a tensor attribute rebound to a `torch.cat` of itself (a "
                    "cache that grows every step).")
    why_bad = ("Measured on torch 2.13: `register_buffer`, `add_module` or a new submodule in `forward` recompile "
               "the next call (guards on `hasattr` / the module dict); an attribute that was `None` and is now a "
               "tensor recompiles once; `nn.Parameter(...)` in a compiled function is a graph break. A cache "
               "rebound to `torch.cat([self.keys, k])` changes shape every step: a recompile per length until "
               "automatic dynamic shapes mark the dimension dynamic (every step with "
               "`automatic_dynamic_shapes=False`), and under `mode=\"reduce-overhead\"` CUDA graphs record one "
               "graph per length.")
    use_instead_note = "Allocate in `__init__` at full size and write in place at a tensor position."
    fix_safety = ("Buffers, parameters and submodules created on the compiled path, and state first set there, are "
                  "reported, not rewritten: sizes and lifetimes are the author's call.")
    fixes = (PREALLOCATED_CACHE, EAGER_HELPER)
    INVALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.keys = None
        self.proj = None

    def forward(self, k):
        if self.keys is None:
            self.keys = k  # TCS011: first assigned on the compiled path
            self.register_buffer("count", torch.zeros(1))  # TCS011
        else:
            self.keys = torch.cat([self.keys, k], dim=0)  # TCS011: regrown every step
        if self.proj is None:
            self.proj = torch.nn.Linear(4, 4)  # TCS011
        scale = torch.nn.Parameter(torch.ones(4))  # TCS011: a graph break
        return self.proj(self.keys) * scale
'''),
        Example('''\
import torch


class Layer:
    def __init__(self):
        self.keys = None

    def update(self, k):
        if self.keys is None:
            self.keys = k  # TCS011
        else:
            self.keys = torch.cat([self.keys, k], dim=-2)  # TCS011
        return self.keys


class Cache:
    def __init__(self, layers: list[Layer]):
        self.layers = layers

    def update(self, k, idx):
        return self.layers[idx].update(k)


class Model(torch.nn.Module):
    def forward(self, k, cache: Cache):
        return cache.update(k, 0)
''', "a cache layer reached through a list of layers"),
    )
    VALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("keys", torch.zeros(16, 4))
        self.register_buffer("pos", torch.zeros(1, dtype=torch.long))
        self.prev = torch.zeros(4)

    def forward(self, k):
        self.keys.index_copy_(0, self.pos, k)
        self.pos.add_(1)
        self.prev = k.detach()  # same shape every call: no guard fails
        with torch.no_grad():
            self.keys.mul_(1.0)
        return self.keys
'''),
    )

    def check(self, stmt, ctx):
        if ctx.func.name in INIT_METHODS:
            return
        for call in ctx.nodes(ast.Call):
            hit = self._call(call, ctx)
            if hit:
                yield hit
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Attribute):
                    hit = self._rebind(target, stmt.value, ctx)
                    if hit:
                        yield hit
                elif isinstance(target, ast.Subscript) and _regrows(stmt.value, target, ctx):
                    state = ctx.state(target.value)
                    if state is not None:
                        yield Hit(target, f"an entry of {state.label} regrown by torch.cat every call",
                                  consequence=GROWN, data={"kind": "regrow", "state": state.label})

    def _call(self, call, ctx):
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in REGISTERS and call.args:
            owner = ctx.value(func.value)
            klass = ctx.class_of(owner)
            if klass is not None and ctx.is_module_class(klass) and not owner.fresh:
                name = call.args[0].value if isinstance(call.args[0], ast.Constant) else "..."
                return Hit(call, f"{func.attr}({name!r}) on {klass.name} in the compiled call",
                           data={"kind": "register", "method": func.attr})
        if ctx.resolve_callee(call) in PARAMETER_CLASSES:
            return Hit(call, "nn.Parameter(...) constructed in the compiled call",
                       consequence="a graph break (dynamo does not construct parameters)",
                       data={"kind": "parameter"})
        return None

    def _rebind(self, target, value, ctx):
        state = ctx.state(target)
        if state is None or state.klass is None or state.scope != "attribute":
            return None
        val = ctx.value(value)
        if _regrows(value, target, ctx):
            return Hit(target, f"{state.label} regrown by torch.cat every call",
                       consequence=GROWN, data={"kind": "regrow", "state": state.label,
                                                "fix": growing_cat(target, value, state.klass, ctx)})
        if isinstance(value, ast.Constant):
            return None  # literals: flags (TCS010)
        creates = (val.value == TENSOR_VALUE or bool(val.classes) or _constructs_module(value, ctx)
                   or state.kind in TENSOR_KINDS or state.kind == MODULE)
        if not creates:
            return None
        known, init = ctx.index.init_kind(state.klass, state.attr)
        if known and init not in (None, NONE):
            return None  # set outside compiled code to a real value: a rebinding, not a creation
        if known and init is None and not _is_none_elsewhere(ctx, state):
            return None  # set outside to something we cannot see: unknown stays unknown
        module = state.kind == MODULE or _constructs_module(value, ctx)
        what = "a tensor" if val.value == TENSOR_VALUE else ("a submodule" if module else "an object")
        return Hit(target, f"{state.label} first set to {what} in the compiled call (was None)",
                   data={"kind": "created", "state": state.label})


def _regrows(value, target, ctx) -> bool:
    value = _strip(value)
    if not isinstance(value, ast.Call) or ctx.resolve_callee(value) not in CONCAT or not value.args:
        return False
    parts = value.args[0]
    if not isinstance(parts, (ast.List, ast.Tuple)):
        return False
    want = ast.unparse(target)
    return any(ast.unparse(_strip(p)) == want for p in parts.elts)


def _strip(node):
    """``self.keys.to(x)`` -> ``self.keys`` (a cast or view of the same state)."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
            "to", "contiguous", "detach", "float", "half", "bfloat16", "type_as"):
        node = node.func.value
    return node


def _constructs_module(value, ctx) -> bool:
    if not isinstance(value, ast.Call):
        return False
    name = ctx.resolve_callee(value)
    if name.startswith("torch.nn.") and name.rsplit(".", 1)[-1][:1].isupper():
        return name not in PARAMETER_CLASSES
    klass = ctx.index.lookup_class(name) if name else None
    return klass is not None and ctx.is_module_class(klass)


def _is_none_elsewhere(ctx, state) -> bool:
    for klass in ctx.index.mro(state.klass):
        found = klass.constants_assigned.get(state.attr)
        if found and ("const", "None") in found:
            return True
    return False


__all__ = ["StateCreated", "dotted"]
