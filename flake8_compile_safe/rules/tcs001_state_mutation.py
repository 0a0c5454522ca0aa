"""TCS001: in-place mutation of state that is not a static tensor."""

from __future__ import annotations

import ast

from ..callgraph import TENSOR_VALUE
from ..project import INIT_METHODS, TENSOR_KINDS, dotted
from ..fixdata import EAGER_HELPER, PREALLOCATED_CACHE, STATIC_MARKING, TENSOR_COUNTER
from ..fixfacts import growing_cat, int_counter, state_write
from .base import Example, Hit, Rule, source_of

MUTATORS = {"append", "extend", "insert", "pop", "update", "clear", "setdefault", "remove", "popitem", "add",
            "discard"}
NOT_MUTATING_UNDERSCORE = {"requires_grad_", "share_memory_", "retain_grad_"}


def state_of(expr: ast.expr, an) -> tuple[str, object, str | None, str | None] | None:
    """Describe the object state ``expr`` refers to: (label, class or None, attr kind, attr).

    ``self._keys``, ``cache._keys`` (cache of a known class), ``obj.buf`` (obj an argument of
    unknown class), or a local bound to one of those. Plain locals are not state.
    """
    if isinstance(expr, ast.Name):
        origin = an.env.get(expr.id)
        if origin is not None and origin.origin:
            klass = an.index.lookup_class(origin.origin[0])
            attr = origin.origin[1]
            return f"{klass.name}.{attr}", klass, an.index.attr_kind(klass, attr), attr
        return None
    if not isinstance(expr, ast.Attribute):
        return None
    owner_val = an.kind_of(expr.value)
    klass = an.class_of(owner_val)
    if klass is not None:
        return f"{klass.name}.{expr.attr}", klass, an.index.attr_kind(klass, expr.attr), expr.attr
    if isinstance(expr.value, ast.Name) and expr.value.id in {p.arg for p in an.func.params}:
        return f"{expr.value.id}.{expr.attr}", None, None, expr.attr
    return None


def tensor_state_is_safe(an, klass, kind, attr) -> bool:
    """Buffers/parameters/tensor attributes of an nn.Module, and tensors marked static, are fine."""
    if klass is None:
        return False
    if kind in TENSOR_KINDS and an.index.is_nn_module(klass):
        return True
    return an.index.is_static_attr(klass, attr)


class StateMutation(Rule):
    code = "TCS001"
    name = "state-mutation"
    why = ("CUDA graphs skip a graph that mutates an input that is not static "
           "('skipping cudagraphs due to mutated inputs') and Python state writes add guards and recompiles")
    fix = ("keep the state in a tensor registered as a buffer or marked with torch._dynamo.mark_static_address "
           "and write it with index_copy_ at a tensor position (compile-safe-fix)")
    what_it_does = ("Flags in-place writes, on a compiled path, to state that outlives the call and is not a "
                    "static tensor: subscript and attribute assignment, augmented assignment, container "
                    "mutators (`append`, `extend`, `insert`, `pop`, `update`, `clear`, `setdefault`) on "
                    "objects held by `self` or an argument, and in-place tensor methods (`zero_`, `copy_`, "
                    "...) on tensors held by a plain object (a dataclass or any class that is not an "
                    "`nn.Module`) that no `torch._dynamo.mark_static_address` marks.")
    why_bad = ("Dynamo lifts such tensors to graph inputs. A graph that writes into an input that is not a "
               "parameter, a buffer or a static address makes CUDA graphs (`mode=\"reduce-overhead\"`) skip "
               "the whole graph: \"skipping cudagraphs due to mutated inputs\". Writes to Python state "
               "(lists, ints, attributes) are replayed as side effects and guarded on: every new value "
               "is a recompile until `recompile_limit` (8) is hit and the frame falls back to eager.")
    use_instead_note = ("Allocate the state as tensors on the model's device, mark them static once when not "
                        "compiling, and write with `index_copy_` at a tensor position.")
    fix_safety = "Writes to Python containers (lists, dicts) and other Python state are reported, not rewritten."
    fixes = (STATIC_MARKING, TENSOR_COUNTER, PREALLOCATED_CACHE, EAGER_HELPER)
    INVALID = (
        Example('''\
import torch
from dataclasses import dataclass, field


@dataclass
class Cache:
    size: int
    keys: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.keys = torch.zeros(self.size, 4)
        self.pos = [0]

    def append(self, k):
        start = self.pos[0]
        self.keys[start] = k  # TCS001: tensor held by a plain object, not static
        self.pos[0] = start + 1  # TCS001: Python list state


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.append(x)
        return x
''', "writes into a dataclass's tensor and list from a compiled forward",
                fixed='''\
import torch
from dataclasses import dataclass, field


@dataclass
class Cache:
    size: int
    keys: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.keys = torch.zeros(self.size, 4)
        self.pos = [0]
        # written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)

    def append(self, k):
        start = self.pos[0]
        self.keys[start] = k  # TCS001: tensor held by a plain object, not static
        self.pos[0] = start + 1  # TCS001: Python list state


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.append(x)
        return x
'''),
        Example('''\
import torch


class Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.history = []

    def forward(self, x):
        self.history.append(x.sum())  # TCS001
        return x
''', "container mutator on module state"),
    )
    VALID = (
        Example('''\
import torch
from dataclasses import dataclass, field


@dataclass
class Cache:
    size: int
    keys: torch.Tensor = field(init=False)
    pos: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.keys = torch.zeros(self.size, 4)
        self.pos = torch.zeros(1, dtype=torch.long)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)
            torch._dynamo.mark_static_address(self.pos)

    def append(self, k):
        self.keys.index_copy_(0, self.pos, k)
        self.pos.add_(1)


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.append(x)
        return x
''', "static tensors written in place"),
        Example('''\
import torch


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("running", torch.zeros(4))

    def forward(self, x):
        self.running.mul_(0.9).add_(x)  # a registered buffer is a static input
        out = torch.zeros_like(x)
        out[0] = 1  # a local, not state
        return out
''', "buffers and locals"),
    )

    def check(self, stmt, an):
        if an.func.name in INIT_METHODS:
            return  # building a fresh object is not mutating shared state
        targets = []
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                targets.extend(target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target])
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            targets.append(stmt.target)
        value = getattr(stmt, "value", None)
        for target in targets:
            if isinstance(target, ast.Subscript):
                base = target.value
                while isinstance(base, ast.Subscript):
                    base = base.value
                hit = self._write_into(base, target, an)
                if hit:
                    yield hit
            elif isinstance(target, ast.Attribute):
                hit = self._attribute_assign(target, value, an, augmented=isinstance(stmt, ast.AugAssign), stmt=stmt)
                if hit:
                    yield hit
        for node in self.nodes(stmt, an, ast.Call):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                hit = self._method_call(node, an)
                if hit:
                    yield hit

    def _write_into(self, base, target, an):
        state = state_of(base, an)
        if state is None:
            return None
        label, klass, kind, attr = state
        if kind in TENSOR_KINDS or an.kind_of(base).value == TENSOR_VALUE:
            if tensor_state_is_safe(an, klass, kind, attr):
                return None
            what = f"in-place write into {label}, a tensor held by a plain object and not marked static"
            state_kind = "tensor"
            fix = state_write(None, klass, attr, an)
        else:
            what = f"in-place write to {label}"
            state_kind = kind or "object"
            fix = None
        return Hit(target, what, data={"kind": "subscript-write", "state": label, "attr": attr,
                                       "state_kind": state_kind, "target": source_of(target, 200), "fix": fix})

    def _attribute_assign(self, target, value, an, augmented, stmt=None):
        state = state_of(target, an)
        if state is None:
            return None
        label, klass, kind, attr = state
        if klass is not None and an.index.is_nn_module(klass):
            if kind in TENSOR_KINDS or (value is not None and an.kind_of(value).value == TENSOR_VALUE):
                return None  # dynamo tracks module tensor attributes as graph state
        verb = "augmented assignment to" if augmented else "assignment to attribute"
        if kind in TENSOR_KINDS:
            fix = state_write(stmt, klass, attr, an) if augmented else growing_cat(target, value, klass, an)
        else:
            fix = int_counter(klass, attr, an)
        return Hit(target, f"{verb} {label} mutates Python state",
                   data={"kind": "attr-assign", "state": label, "attr": attr, "state_kind": kind or "object",
                         "fix": fix})

    def _method_call(self, call, an):
        method = call.func.attr
        recv = call.func.value
        if method in MUTATORS:
            if an.resolve_call(call):
                return None  # a project method (KVCache.append), followed as a call instead
            state = state_of(recv, an)
            if state is None or an.kind_of(recv).value == TENSOR_VALUE:
                return None
            label = state[0]
            return Hit(call, f"in-place {method}() on {label} mutates Python state",
                       data={"kind": "mutator", "state": label, "attr": state[3], "state_kind": state[2] or "object"})
        if method.endswith("_") and not method.startswith("_") and method not in NOT_MUTATING_UNDERSCORE:
            state = state_of(recv, an)
            if state is None:
                return None
            label, klass, kind, attr = state
            if kind not in TENSOR_KINDS and an.kind_of(recv).value != TENSOR_VALUE:
                return None
            if tensor_state_is_safe(an, klass, kind, attr):
                return None
            name = dotted(call.func) or method
            return Hit(call, f"in-place {method}() on {label}, a tensor held by a plain object and not marked static",
                       data={"kind": "inplace-method", "state": label, "attr": attr, "state_kind": "tensor",
                             "call": name, "fix": state_write(None, klass, attr, an)})
        return None
