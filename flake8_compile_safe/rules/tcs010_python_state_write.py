"""TCS010: a write to Python state (a list, a dict, an int or flag attribute) on a compiled path."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER, TENSOR_COUNTER
from ..fixfacts import int_counter
from ..values import DICT, INIT_METHODS, INT, LIST, MODULE, NONE, TENSOR_KINDS, TENSOR_VALUE
from .base import Example, Hit, Rule, source_of

LIST_GROWERS = {"append", "extend", "insert", "pop", "remove", "clear", "appendleft", "popleft"}
DICT_WRITERS = {"update", "setdefault", "pop", "popitem", "clear"}
SET_WRITERS = {"add", "discard"}
LIST_CONSEQUENCE = "a recompile every call that changes its length (dynamo guards on it)"
DICT_CONSEQUENCE = "a recompile whenever its keys change (dynamo guards on them)"
VALUE_CONSEQUENCE = "a recompile whenever the value changes (dynamo guards on it)"


class PythonStateWrite(Rule):
    code = "TCS010"
    name = "python-state-write"
    consequence = VALUE_CONSEQUENCE
    why = ("dynamo replays writes to Python objects after the graph and guards on what it read: the next call "
           "with a different value, length or set of keys fails a guard and recompiles, until recompile_limit (8) "
           "sends the frame to eager")
    fix = ("keep per-step state in tensors (a buffer or a static tensor written in place), or update it outside "
           "the compiled function")
    what_it_does = ("Flags writes, on a compiled path, to Python state that outlives the call: `append`/`extend`/"
                    "`pop`/... on a list, item assignment and `update`/`setdefault`/... on a dict (attributes of "
                    "`self` or of an argument, module globals, variables a hook closes over), and rebinding an "
                    "attribute to a Python value that can differ from call to call: counters (`self.step += 1`), "
                    "values computed from the input (`self.seq_len = x.shape[1]`), flags assigned different "
                    "literals in different places (`self.first = False` with `self.first = True` in `__init__`). "
                    "Not flagged: containers and attributes of objects the compiled call created itself, an "
                    "attribute always assigned the same literal, receivers whose kind the code does not prove "
                    "(an `.update()` on an object of unknown class), a tensor entry of a dict replaced at a key "
                    "the new value reads (`d[k] = f(d[k])`: the keys do not change), and tensors (TCS001, "
                    "TCS011).")
    why_bad = ("Measured on torch 2.13: appending to a list held by the module recompiles on every call (the guard "
               "is on the list's length); writing a dict entry recompiles once per new set of keys; an int "
               "attribute of an `nn.Module` incremented in `forward` recompiles on every call (module ints are "
               "specialised); a flag flipped in `forward` recompiles once. A hook that stores into a dict it closes "
               "over (`saved[name] = out`) is such a write too: hooks run inside the compiled forward.")
    use_instead_note = ("Hold the state in tensors that are written in place, or keep the bookkeeping outside the "
                        "compiled call.")
    fix_safety = ("Lists, dicts, flags and ints used other than as tensor indices are reported, not rewritten: "
                  "where that state should live is the author's call.")
    fixes = (TENSOR_COUNTER, EAGER_HELPER)
    INVALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.history = []
        self.seen = {}
        self.step = 0
        self.first = True

    def forward(self, x, key: str):
        self.history.append(x.sum())  # TCS010
        self.seen[key] = x  # TCS010
        self.step += 1  # TCS010
        if self.first:
            self.first = False  # TCS010
        return x * 2
''', "a list, a dict, a counter and a flag held by the module",
                fixed='''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.history = []
        self.seen = {}
        self.register_buffer("step", torch.tensor(0, dtype=torch.long), persistent=False)
        self.first = True

    def forward(self, x, key: str):
        self.history.append(x.sum())  # TCS010
        self.seen[key] = x  # TCS010
        self.step.add_(1)  # TCS010
        if self.first:
            self.first = False  # TCS010
        return x * 2
'''),
        Example('''\
import torch

STORE = {}


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        saved = {}

        def keep(module, args, out):
            saved["lin"] = out  # TCS010: the hook runs inside the compiled forward

        self.lin.register_forward_hook(keep)

    def forward(self, x):
        STORE["last"] = x  # TCS010
        return self.lin(x)
''', "a module global, and a dict a forward hook closes over"),
    )
    VALID = (
        Example('''\
import torch


class Result:
    pass


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.training_only = False

    def forward(self, x, cache):
        out = Result()
        out.values = x * 2  # an object this call created
        out.parts = []
        out.parts.append(x)
        self.training_only = False  # the same literal everywhere: nothing flips
        cache.update(x)  # an object of unknown class: not proven to be a dict
        return out.values
'''),
        Example('''\
import torch


class Config:
    def __init__(self):
        self.layer_types = None
        self.windows = [4, None]


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.config = Config()

    def forward(self, x):
        layer_types = getattr(self.config, "layer_types", None)
        if layer_types is None:
            layer_types = []  # under `is None` the name holds this fresh list, not the attribute
            for window in self.config.windows:
                layer_types.append("sliding" if window else "full")
        return x
''', "a default filled in under `if x is None:`"),
        Example('''\
import torch


class Smoothed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        running = {"lin": torch.zeros(2, 4)}

        def smooth(module, args, out):
            running["lin"] = (running["lin"] * 0.9 + out).detach()  # the key is there: keys unchanged

        self.lin.register_forward_hook(smooth)

    def forward(self, x):
        return self.lin(x)
''', "a tensor entry replaced at a key the value itself reads"),
    )

    def check(self, stmt, ctx):
        if ctx.func.name in INIT_METHODS:
            return
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for elt in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                    hit = self._target(elt, stmt, ctx)
                    if hit:
                        yield hit
        for call in ctx.nodes(ast.Call):
            if isinstance(call.func, ast.Attribute):
                hit = self._mutator(call, ctx)
                if hit:
                    yield hit

    def _target(self, target, stmt, ctx):
        if isinstance(target, ast.Subscript):
            state = ctx.state(target.value)
            kind = state.kind if state is not None else None
            if state is not None and kind is None and _string_key(target.slice):
                kind = DICT  # `saved["lin"] = out`: only a mapping takes a string key
            if state is None or kind not in (LIST, DICT) or ctx.value(target.value).value == TENSOR_VALUE:
                return None
            if kind == DICT and _replaces_tensor_entry(target, stmt, ctx):
                return None
            what = "dict" if kind == DICT else "list"
            return Hit(target, f"write into {state.label}, a Python {what}",
                       consequence=DICT_CONSEQUENCE if kind == DICT else VALUE_CONSEQUENCE,
                       data={"kind": "container-write", "state": state.label, "state_kind": kind})
        if not isinstance(target, ast.Attribute):
            return None
        state = ctx.state(target)
        if state is None or state.scope not in ("attribute", "argument"):
            return None
        if isinstance(stmt, ast.AugAssign):
            if state.kind in TENSOR_KINDS or ctx.value(target).value == TENSOR_VALUE:
                return None  # a tensor updated in place: TCS001
            if state.kind not in (INT, None) and state.klass is not None:
                return None
            if state.kind is None and state.klass is None and not _numeric(stmt.value, ctx):
                return None
            return Hit(target, f"`{source_of(stmt, 50)}` updates the Python number {state.label}",
                       data={"kind": "counter", "state": state.label, "state_kind": "int",
                             "fix": int_counter(state.klass, state.attr, ctx)})
        value = stmt.value
        val = ctx.value(value)
        if val.value == TENSOR_VALUE or state.kind in TENSOR_KINDS or state.kind in (MODULE, LIST, DICT):
            return None  # tensors (TCS001/TCS011), submodules and containers rebound (TCS011)
        if val.classes or val.func or isinstance(value, (ast.List, ast.Dict, ast.ListComp, ast.DictComp)):
            return None  # an object stored: TCS011 when it creates state
        if isinstance(value, ast.Constant):
            literals = self._literals(ctx, state)
            if literals is None or len(literals) <= 1:
                return None  # always the same literal (or unknown elsewhere): nothing flips
            return Hit(target, f"flag {state.label} set to {value.value!r} (other values elsewhere)",
                       consequence="a recompile when it flips (dynamo guards on it)",
                       data={"kind": "flag", "state": state.label, "state_kind": "flag"})
        if state.kind == INT or _int_like(value, ctx):
            return Hit(target, f"{state.label} rebound to `{source_of(value, 40)}`, a Python number",
                       data={"kind": "int-attr", "state": state.label, "state_kind": "int",
                             "fix": int_counter(state.klass, state.attr, ctx)})
        return None

    @staticmethod
    def _literals(ctx, state):
        if state.klass is None:
            return None
        for klass in ctx.index.mro(state.klass):
            if state.attr in klass.constants_assigned:
                found = klass.constants_assigned[state.attr]
                return None if ("expr",) in found or ("aug",) in found else found
        return None

    def _mutator(self, call, ctx):
        method = call.func.attr
        if method not in LIST_GROWERS | DICT_WRITERS | SET_WRITERS:
            return None
        recv = call.func.value
        val = ctx.value(recv)
        if val.value not in (LIST, DICT) or val.fresh:
            state = ctx.state(recv)
            if state is None or state.kind not in (LIST, DICT):
                return None
            kind = state.kind
        else:
            state = ctx.state(recv)
            if state is None:
                return None
            kind = val.value
        if kind == LIST and method not in LIST_GROWERS or kind == DICT and method not in DICT_WRITERS:
            return None
        return Hit(call, f"{method}() on {state.label}, a Python {'list' if kind == LIST else 'dict'}",
                   consequence=LIST_CONSEQUENCE if kind == LIST else DICT_CONSEQUENCE,
                   data={"kind": "mutator", "state": state.label, "state_kind": kind})


def _replaces_tensor_entry(target: ast.Subscript, stmt, ctx) -> bool:
    """``d[k] = f(d[k], ...)`` with a tensor value: reading ``d[k]`` proves the key is there, so the
    keys do not change; dynamo guards on a tensor entry's metadata, not on which tensor it is (a
    shape that grows is TCS011's)."""
    value = getattr(stmt, "value", None)
    if value is None or isinstance(stmt, ast.AugAssign) or ctx.value(value).value != TENSOR_VALUE:
        return False
    wanted = ast.dump(target, include_attributes=False).replace("ctx=Store()", "ctx=Load()")
    return any(isinstance(node, ast.Subscript) and ast.dump(node, include_attributes=False) == wanted
               for node in ast.walk(value))


def _string_key(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr)


def _numeric(node, ctx) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) or _int_like(node, ctx)


def _int_like(node, ctx) -> bool:
    """An int the code proves: a literal, a shape entry, len(), arithmetic on those."""
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("len", "int"):
        return ctx.value(node.args[0]).value != TENSOR_VALUE if node.args else False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("size", "dim"):
        return True
    if isinstance(node, ast.BinOp):
        return _int_like(node.left, ctx) and (_int_like(node.right, ctx) or isinstance(node.right, ast.Attribute)) \
            or _int_like(node.right, ctx) and isinstance(node.left, ast.Attribute)
    return False


__all__ = ["PythonStateWrite", "NONE"]
