"""TCS011: module state created, or a state tensor regrown, on a compiled path."""

from __future__ import annotations

import ast

from ..astwalk import walk_scope
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
                    "built lazily in `forward`); and a tensor attribute (or an entry of a dict attribute) rebound to a "
                    "`torch.cat` of itself, directly or through locals of the same function (`k = torch.cat([self.k, "
                    "k]); self.k = k`, or a window of it, `nk[:, -n:]`): a cache that grows every step.")
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
        Example('''\
import torch


class StreamingAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache_k = torch.zeros(1, 0, 4)
        self.state = {"past": torch.zeros(1, 0, 4)}

    def forward(self, k):
        k = torch.cat([self.cache_k, k], dim=1)
        self.cache_k = k  # TCS011: regrown through a local
        pk = self.state["past"]
        nk = torch.cat([pk, k], dim=1)
        self.state["past"] = nk[:, -16:]  # TCS011: a window of it grows until it is full
        return k
''', "the concatenation made in a local first, then stored (the usual KV-cache form)"),
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
                elif isinstance(target, ast.Subscript) and _regrows(stmt.value, target, ctx) is not None:
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
        how = _regrows(value, target, ctx)
        if how is not None:
            data = {"kind": "regrow", "state": state.label}
            if how == DIRECT:  # the fixer rewrites the `torch.cat` it can see in this statement
                data["fix"] = growing_cat(target, value, state.klass, ctx)
            return Hit(target, f"{state.label} regrown by torch.cat every call", consequence=GROWN, data=data)
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


DIRECT, THROUGH_LOCAL = "direct", "through a local"
_LOCAL_CATS = "local-concats"
_CONCAT_NAMES = {name.rsplit(".", 1)[-1] for name in CONCAT}  # resolved against CONCAT at check time


def _regrows(value, target, ctx) -> str | None:
    """How ``target = value`` stores a concatenation of ``target`` itself: ``DIRECT``
    (``self.k = torch.cat([self.k, k])``), ``THROUGH_LOCAL`` (``k = torch.cat([self.k, k])`` or
    ``pk = self.k; nk = torch.cat([pk, k])`` earlier in the function, then ``self.k = nk`` or a
    window of it, ``nk[:, -n:]``), else None."""
    want = ast.unparse(target)
    value = _strip(value)
    if isinstance(value, ast.Call):
        if ctx.resolve_callee(value) in CONCAT and value.args and isinstance(value.args[0], (ast.List, ast.Tuple)) \
                and any(ast.unparse(_strip(p)) == want for p in value.args[0].elts):
            return DIRECT
        return None
    name = _window_of(value)
    if not isinstance(name, ast.Name):
        return None
    concats, aliases = ctx.func.derived(_LOCAL_CATS, _local_concats) or ((), ())
    for local, callee, parts in concats:
        if local == name.id and ctx.resolve(callee) in CONCAT and any(
                part == want or (part, want) in aliases for part in parts):
            return THROUGH_LOCAL
    return None


def _window_of(node):
    """``nk[:, offset:]`` or ``nk[:, -n:]`` -> ``nk``: a window of a concatenation still holds its growth
    (until it is full). ``s[:, 1:]`` is not taken: dropping as many as were added keeps the size."""
    while isinstance(node, ast.Subscript):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        slices = [p for p in parts if isinstance(p, ast.Slice)]
        if not slices or any(isinstance(p.lower, ast.Constant) and p.lower.value for p in slices):
            return node
        node = _strip(node.value)
    return node


def _local_concats(node) -> tuple:
    """(((name, callee, part sources), ...), ((alias, source), ...)) of one def, as plain data (kept in the
    cached summary): ``name = torch.cat([a, b])`` and ``alias = <attribute or item>`` assignments."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return (), ()
    concats, aliases = [], set()
    for sub in walk_scope(node.body):
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name)):
            continue
        name, value = sub.targets[0].id, _strip(sub.value)
        if isinstance(value, ast.Call) and value.args and isinstance(value.args[0], (ast.List, ast.Tuple)):
            callee = dotted(value.func)
            if callee and callee.rsplit(".", 1)[-1] in _CONCAT_NAMES:
                concats.append((name, callee, tuple(ast.unparse(_strip(p)) for p in value.args[0].elts)))
        elif isinstance(value, (ast.Attribute, ast.Subscript)):
            aliases.add((name, ast.unparse(value)))
    return tuple(sorted(concats)), tuple(sorted(aliases))


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
