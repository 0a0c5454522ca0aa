"""TCS001: an in-place write into a tensor that outlives the call and is not static."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER, STATIC_MARKING
from ..fixfacts import state_write
from ..values import DICT, INIT_METHODS, LIST, TENSOR_KINDS, TENSOR_VALUE, dotted
from .base import Example, Hit, Rule, source_of

NOT_MUTATING_UNDERSCORE = {"requires_grad_", "share_memory_", "retain_grad_"}


def is_inplace_method(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_") and name not in NOT_MUTATING_UNDERSCORE


def tensor_state_is_safe(ctx, state, base: ast.expr | None = None) -> bool:
    """Tensors of an nn.Module (buffers, parameters, plain tensor attributes), tensors reached through
    an nn.Module's attributes (``self.cache.keys`` in a module's method) and tensors marked with
    mark_static_address are static inputs: writing them in place keeps CUDA graphs."""
    if state.klass is not None and state.kind in TENSOR_KINDS and ctx.is_module_class(state.klass):
        return True
    return ctx.is_static(state) or (base is not None and reached_from_module(ctx, base))


def reached_from_module(ctx, expr: ast.expr) -> bool:
    """Whether ``expr`` is read through the attributes of an nn.Module object (``self.holder.cache``,
    ``self.layers[0].keys``, or a local bound to ``self._state``).

    Dynamo (torch 2.13, ``VariableBuilder.wrap_tensor``) marks every tensor whose source starts at an
    nn.Module as a static input ("mark tensor attributes of nn modules static"), however many plain
    objects lie in between; a tensor reached from an argument of the compiled call is not static.
    """
    node = expr
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
        if ctx.is_module_class(ctx.class_of(ctx.value(node))):
            return True
        origin = ctx.value(node).origin
        if origin is not None and ctx.is_module_class(ctx.index.lookup_class(origin[0])):
            return True
    return False


class StateMutation(Rule):
    code = "TCS001"
    name = "state-mutation"
    consequence = "CUDA graphs skip the graph (a mutated input that is not static)"
    why = ("a graph that writes into a tensor input that is not a parameter, a buffer or a static address is "
           "skipped by CUDA graphs ('skipping cudagraphs due to mutated inputs')")
    fix = ("keep the state in a tensor registered as a buffer or marked with torch._dynamo.mark_static_address "
           "and write it with index_copy_ at a tensor position (compile-safe-fix)")
    what_it_does = ("Flags in-place writes, on a compiled path, into a tensor that outlives the call and is not "
                    "static: subscript assignment (`cache.keys[i] = k`), augmented assignment (`self.acc += x` on "
                    "a tensor) and in-place methods (`zero_`, `copy_`, `index_copy_`, ...) on a tensor held by a "
                    "plain object (a dataclass or any class that is not an `nn.Module`), on an element of a list "
                    "of tensors held by one, or on a tensor argument of a compiled root. Not flagged: buffers, "
                    "parameters and tensor attributes of an `nn.Module`, tensors of plain objects read through "
                    "an `nn.Module`'s attributes in the module's own code (`self.state.prev[:] = x`, "
                    "`state = self._state; state.prev.add_(1)`, and inside the plain object's own methods called "
                    "that way: dynamo makes them static inputs), tensors marked with "
                    "`torch._dynamo.mark_static_address` (directly, or through a local that is then stored), "
                    "and objects the compiled call created itself. Python containers and attributes: TCS010.")
    why_bad = ("Dynamo lifts such tensors to graph inputs. A graph that writes into an input that is not a "
               "parameter, a buffer or a static address makes CUDA graphs (`mode=\"reduce-overhead\"`) skip "
               "the whole graph: \"skipping cudagraphs due to mutated inputs\" (checked on torch 2.13 from the "
               "AOT metadata: the input is mutated and not in `static_input_indices`). Dynamo marks as static "
               "every tensor whose source starts at an `nn.Module` (`VariableBuilder.wrap_tensor`: \"mark tensor "
               "attributes of nn modules static\"), however many plain objects lie in between; a state object "
               "passed to the compiled call as an argument is not, and neither is one whose method dynamo "
               "starts a frame in after a graph break.")
    use_instead_note = ("Allocate the state as tensors on the model's device, mark them static once when not "
                        "compiling, and write with `index_copy_` at a tensor position.")
    fix_safety = ("A write into an element of a list of tensors, or into a tensor argument of the compiled "
                  "root, is reported, not rewritten: no allocation to mark static is known for it.")
    fixes = (STATIC_MARKING, EAGER_HELPER)
    INVALID = (
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
        self.pos = torch.zeros((), dtype=torch.long)

    def append(self, k):
        self.keys.index_copy_(0, self.pos.view(1), k)  # TCS001: tensor held by a plain object, not static
        self.pos += 1  # TCS001


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.append(x)
        return x
''', "writes into a dataclass's tensors from a compiled forward",
                fixed='''\
import torch
from dataclasses import dataclass, field


@dataclass
class Cache:
    size: int
    keys: torch.Tensor = field(init=False)
    pos: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.keys = torch.zeros(self.size, 4)
        self.pos = torch.zeros((), dtype=torch.long)
        # written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)
            torch._dynamo.mark_static_address(self.pos)

    def append(self, k):
        self.keys.index_copy_(0, self.pos.view(1), k)  # TCS001: tensor held by a plain object, not static
        self.pos.add_(1)  # TCS001


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        cache.append(x)
        return x
'''),
        Example('''\
import torch


class States:
    def __init__(self, n):
        self.states = [torch.zeros(4) for _ in range(n)]


class Model(torch.nn.Module):
    def forward(self, x, s: States):
        s.states[0].copy_(x)  # TCS001: an element of a list of tensors
        return x
''', "a list of state tensors"),
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
        Example('''\
import torch


class StreamState:
    def __init__(self):
        self.previous = torch.zeros(1, 4)
        self.offset = torch.zeros(1, dtype=torch.long)


class StreamingConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.state = StreamState()

    def forward(self, x):
        state = self.state
        state.previous[:] = x  # read through the module's attribute: dynamo makes it a static input
        self.state.offset.add_(1)
        return x
''', "state objects held by the module itself"),
        Example('''\
import torch


class RingCache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)
        self.end = torch.zeros(1, dtype=torch.long)

    def complete(self, k):
        self.keys.index_copy_(0, self.end % 8, k)  # self was reached through the module: static
        self.end.add_(1)
        return self.keys


class LayerState:
    def __init__(self):
        self.cache = RingCache()


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._state = LayerState()

    def forward(self, x):
        state = self._state
        return state.cache.complete(x)
''', "methods of a plain object the module holds, called through the module's attributes"),
        Example('''\
import torch


class States:
    def __init__(self, n):
        self.states = []
        for _ in range(n):
            t = torch.zeros(4)
            torch._dynamo.mark_static_address(t)
            self.states.append(t)


class Out:
    pass


class Model(torch.nn.Module):
    def forward(self, x, s: States):
        s.states[0].copy_(x)  # marked static through a local before it was stored
        out = Out()
        out.hidden = torch.zeros(4)
        out.hidden[0] = 1  # an object this call created: not an input
        return out
''', "tensors marked static through a local, and fresh objects"),
        Example('''\
import torch


class KVCache:
    def __init__(self, layers):
        self.keys = [torch.zeros(8, 4) for _ in range(layers)]
        self.values = [torch.zeros(8, 4) for _ in range(layers)]
        for buffer in (*self.keys, *self.values):
            torch._dynamo.mark_static_address(buffer)


class Model(torch.nn.Module):
    def forward(self, x, pos, cache: KVCache):
        cache.keys[0].index_copy_(0, pos, x)  # every element was marked static in the loop
        cache.values[0].index_copy_(0, pos, x)
        return x
''', "buffers marked static in a loop over the lists that hold them"),
    )

    def check(self, stmt, ctx):
        if ctx.func.name in INIT_METHODS:
            return  # building a fresh object is not mutating shared state
        targets = []
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                targets.extend(target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target])
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            targets.append(stmt.target)
        for target in targets:
            if isinstance(target, ast.Subscript):
                base = target.value
                while isinstance(base, ast.Subscript):
                    base = base.value
                hit = self._write_into(base, target, ctx, element=base is not target.value)
                if hit:
                    yield hit
            elif isinstance(stmt, ast.AugAssign) and isinstance(target, (ast.Attribute, ast.Name)):
                hit = self._write_into(target, target, ctx, element=False, augmented=True)
                if hit:
                    yield hit
        for node in ctx.nodes(ast.Call):
            if isinstance(node.func, ast.Attribute) and is_inplace_method(node.func.attr):
                hit = self._method_call(node, ctx)
                if hit:
                    yield hit

    def _tensor_state(self, base, ctx, element: bool):
        """(state, label) when ``base`` (or an element of it) is a tensor that outlives the call."""
        state = ctx.state(base)
        if state is None:
            return None
        if state.kind in TENSOR_KINDS or ctx.value(base).value == TENSOR_VALUE:
            return state, state.label
        if element and state.kind == LIST:
            return state, f"an element of {state.label}"
        return None

    def _write_into(self, base, target, ctx, element: bool, augmented: bool = False):
        found = self._tensor_state(base, ctx, element)
        if found is None:
            return None
        state, label = found
        if tensor_state_is_safe(ctx, state, base):
            return None
        what = "in-place update of" if augmented and target is base else "in-place write into"
        return Hit(target, f"{what} {label}, a tensor that is not static",
                   data={"kind": "subscript-write" if target is not base else "augmented", "state": state.label,
                         "attr": state.attr, "state_kind": "tensor", "target": source_of(target, 200),
                         "fix": _static_marking(state, ctx, ctx.stmt if augmented else None)})

    def _method_call(self, call, ctx):
        recv = call.func.value
        element = isinstance(recv, ast.Subscript)
        base = recv
        while isinstance(base, ast.Subscript):
            base = base.value
        if base is not recv and ctx.value(base).value in (LIST, DICT) and ctx.state(base) is not None:
            element = True
        found = self._tensor_state(base, ctx, element)
        if found is None:
            return None
        state, label = found
        if tensor_state_is_safe(ctx, state, base):
            return None
        method = call.func.attr
        return Hit(call, f"in-place {method}() on {label}, a tensor that is not static",
                   data={"kind": "inplace-method", "state": state.label, "attr": state.attr, "state_kind": "tensor",
                         "call": dotted(call.func) or method, "fix": _static_marking(state, ctx, None)})


def _static_marking(state, ctx, stmt):
    """The static-marking payload for a tensor attribute of a project class (not a list of tensors, an argument)."""
    if state.kind in (LIST, DICT) or state.scope != "attribute" or state.klass is None:
        return None
    return state_write(stmt, state.klass, state.attr, ctx)
