"""TCS014: a comprehension in a function whose frame dynamo skips runs as a frame of its own, and is skipped too.

Not a statement check: whether a frame is skipped depends on a graph break the other rules found,
possibly in a callee, so this rule runs once after the walk (:meth:`check_reached`).
"""

from __future__ import annotations

import ast
import sys
from typing import Iterable, NamedTuple

from ..astwalk import walk, walk_scope
from ..findings import Finding
from ..splits import callers_of, is_break, loop_and_try_bodies, reaching
from .base import Example, Rule
from .reached import ReachedFacts

# Python 3.12 inlines list/set/dict comprehensions into the enclosing frame (PEP 709); a generator
# expression is its own code object on every version.
_ALL_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_OWN_FRAME = (ast.GeneratorExp,) if sys.version_info >= (3, 12) else _ALL_COMPREHENSIONS
_TORCH_MODULES = {"torch", "torch.nn", "torch.nn.functional"}


class ComprehensionInSkippedFrame(Rule):
    code = "TCS014"
    name = "comprehension-in-skipped-frame"
    consequence = "a frame skip ('Missing tp_iternext')"
    why = ("dynamo runs a function eagerly when a graph break happens inside its try block or loop; a comprehension "
           "there (its own code object before Python 3.12) then starts a frame of its own, whose iterator argument "
           "dynamo cannot take")
    fix = "remove the break the function's try block or loop reaches, or write the comprehension as a plain loop"
    what_it_does = (
        "Flags, on a compiled path, a list/set/dict comprehension or generator expression that reads a tensor-holding "
        "name (`torch`, or `self` of an `nn.Module` method) and iterates something the code proves is not a tuple, "
        "a tensor or a range (a dict or a view of one, a list, a set, a string, `zip`, `enumerate`, a name assigned "
        "one of those, or the result of a call annotated to return one) in a function whose frame dynamo skips because "
        "a graph break the other rules found happens while the function's `try` block or loop runs: either the break "
        "is in the function itself, inside a `try` body or a loop, or the function is a decorator's wrapper whose "
        "`try` body calls the wrapped function, and the decorated function reaches a break. On Python 3.12 and "
        "later only generator expressions are flagged (PEP 709 inlines the other comprehensions).")
    why_bad = (
        "Measured on torch 2.13 / Python 3.11: dynamo cannot resume after a graph break inside a `try` block or a "
        "loop, so it skips the whole frame and runs it eagerly. The function's calls are then new frames that "
        "dynamo tries to compile one by one, and a comprehension is one: its argument is the iterator the "
        "enclosing function built (`dict_keyiterator`, `list_iterator`), which dynamo cannot take ('Missing "
        "tp_iternext'): a second frame skip, every time a new cache entry is tried. transformers' "
        "`capture_outputs` wrapper is this shape: `{... for k in capturable_flags}` before `try: func(self, ...)`.")
    use_instead_note = ("Fix the graph break the `try` block or loop reaches (the finding this one points at); "
                        "failing that, build the collection with a plain `for` loop in the enclosing function.")
    fix_safety = "Not rewritten."
    INVALID = (
        Example('''\
import functools

import torch
from torch import nn


RECORDED = {"router_logits": True}


def record_outputs(func):
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        flags = {name: getattr(self, name, False) for name in RECORDED}  # TCS014
        try:
            out = func(self, *args, **kwargs)
        finally:
            flags.clear()
        return out

    return wrapper


class Router(nn.Module):
    @record_outputs
    def forward(self, ids):
        sizes = torch.bincount(ids, minlength=4).tolist()  # the graph break inside the wrapper's try block
        return ids.sort().values.split(sizes)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = Router()

    def forward(self, ids):
        return self.router(ids)
'''),
        Example('''\
import torch
from torch import nn


class Sampler(nn.Module):
    def forward(self, x, steps: int):
        for _ in range(steps):
            n = int(x.sum().item())  # breaks inside the loop: dynamo skips the frame
            x = x[:n]
        return [torch.relu(t) for t in list(x)]  # TCS014
'''),
    )
    VALID = (
        Example('''\
import torch
from torch import nn


class Sampler(nn.Module):
    def forward(self, x, steps: int):
        for _ in range(steps):
            x = x * 2  # no break in the loop: the frame compiles, the comprehension is traced inline
        return [torch.relu(t) for t in x]
'''),
        Example('''\
import functools

from torch import nn


def timed(func):
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        names = [name for name in ["a", "b"]]  # reads no tensor, module or torch: dynamo leaves it alone
        try:
            return func(self, *args, **kwargs)
        finally:
            names.clear()

    return wrapper


class Block(nn.Module):
    @timed
    def forward(self, x):
        return x.sum(0).tolist()
'''),
        Example('''\
import torch
from torch import nn


class Sampler(nn.Module):
    def forward(self, x, steps: int):
        for _ in range(steps):
            n = int(x.sum().item())  # the frame is skipped, but a tuple, a tensor or a range iterates fine
            x = x[:n]
        return [torch.relu(t) for t in x], [torch.relu(x) for _ in range(steps)]
''', note="dynamo takes a tuple, tensor or range iterator as a frame input; only other iterables are flagged"),
    )

    def check(self, stmt, ctx):
        return ()

    def check_reached(self, facts: ReachedFacts) -> Iterable[Finding]:
        breaking_lines: dict[str, list[int]] = {}
        for finding in facts.findings:
            if is_break(finding):
                breaking_lines.setdefault(finding.function, []).append(finding.line)
        breaks_below = reaching(breaking_lines, callers_of(facts.calls))
        seen: set[str] = set()
        wrapped: dict = {}  # one decorator serves many functions: its wrappers' comprehensions, found once
        for item in facts.reached:
            func = item.ctx.func
            if func.qualname in seen:
                continue
            seen.add(func.qualname)
            if func.qualname not in breaking_lines and func.qualname not in breaks_below:
                continue  # nothing to check; reading its def would parse its file on a warm run
            try:
                yield from list(self._check_function(func, item, facts, breaking_lines, breaks_below, wrapped))
            except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                facts.gave_up.append((str(func.module.path), func.lineno, func.display,
                                      f"{self.code} {type(exc).__name__}: {str(exc)[:100]}"))

    def _check_function(self, func, item, facts, breaking_lines, breaks_below, wrapped) -> Iterable[Finding]:
        index = facts.index
        lines = breaking_lines.get(func.qualname, ())
        # From the summary on a warm run: the comprehensions and break regions of the def, as plain
        # data, so that a function with a break in an unchanged file costs no parse.
        regions, candidates = ((), ())
        if lines:
            regions, candidates = func.derived(_FRAME_FACTS, lambda node: _frame_facts(node, func.module)) or ((), ())
        if candidates and any(_in_regions(line, regions) for line in lines):
            module_self = _module_self(func, index)
            for spot in candidates:
                if _flagged(spot, module_self, func.module, index):
                    yield self._finding(spot, func.module.path, func.qualname, func.lineno, item,
                                        f"comprehension in `{func.display}`, which dynamo skips after the break "
                                        f"at line {min(lines)}")
        if func.qualname not in breaks_below:
            return
        for name in func.decorator_names():
            decorator = index.lookup_function(name)
            if decorator is None:
                continue
            on_module = _module_self(func, index) is not None
            key = (decorator.qualname, decorator.lineno, decorator.col, on_module)
            found = wrapped.get(key)
            if found is None:
                found = wrapped[key] = wrapper_comprehensions(decorator, on_module, index)
            for spot, wrapper in found:
                yield self._finding(spot, decorator.module.path, f"{decorator.qualname}.{wrapper.name}",
                                    wrapper.lineno, item,
                                    f"comprehension in `{decorator.name}`'s wrapper, skipped after the "
                                    f"break in `{func.display}`")

    def _finding(self, spot, path, function, def_line, item, summary) -> Finding:
        return Finding(self.code, str(path), spot.lineno, spot.col, spot.end_lineno, spot.end_col,
                       summary=summary, why=self.why, fix=self.fix,
                       root=item.root.display, chain=item.chain + (function.rsplit(".", 1)[-1],), function=function,
                       def_line=def_line, consequence=self.consequence,
                       data={"kind": "comprehension-in-skipped-frame"})


class Spot(NamedTuple):
    """A comprehension that is a frame of its own, as plain data (kept in the cached summary).

    ``names``: the free names its frame reads; ``proof``: None when nothing proves its iterable is
    not a tuple, a tensor or a range, else the calls whose return annotations must prove it
    (``("func", name)`` or ``("method", class name, attribute)``; empty: proven by the code itself).
    """

    lineno: int
    col: int
    end_lineno: int
    end_col: int
    names: tuple[str, ...]
    proof: tuple[tuple[str, ...], ...] | None


class Wrapper(NamedTuple):
    name: str
    lineno: int
    first_param: str | None  # a module when the decorated function is an nn.Module method
    spots: tuple[Spot, ...]


def wrapper_comprehensions(decorator, on_module: bool, index) -> list[tuple[Spot, Wrapper]]:
    """(comprehension, wrapper) for each flagged comprehension in the wrappers of ``decorator``.

    ``on_module``: the decorated function is an ``nn.Module`` method, so a wrapper's first
    parameter is a module. The same for every function the decorator wraps (memoised by the caller).
    """
    wrappers = decorator.derived(_WRAPPER_FACTS, lambda node: _wrapper_facts(node, decorator.module)) or ()
    return [(spot, wrapper) for wrapper in wrappers for spot in wrapper.spots
            if _flagged(spot, wrapper.first_param if on_module else None, decorator.module, index)]


def _flagged(spot: Spot, self_name: str | None, module, index) -> bool:
    """The comprehension holds something dynamo looks for, and its iterable is proven not a tuple."""
    holds = (self_name is not None and self_name in spot.names) or \
        any(module.resolve(name) in _TORCH_MODULES for name in spot.names)
    return holds and spot.proof is not None and all(_returns_iterable(call, module, index) for call in spot.proof)


def _module_self(func, index) -> str | None:
    """The first parameter's name when ``func`` is a method of an ``nn.Module`` class (it is a module)."""
    return func.first_positional() if func.cls is not None and index.is_nn_module(func.cls) else None


def _comprehensions(body) -> list[ast.expr]:
    """Comprehensions that are frames of their own, outermost only (an inner one runs in the outer's frame)."""
    found = [node for node in walk_scope(body) if isinstance(node, _OWN_FRAME)]
    inner = {id(sub) for node in found for sub in walk(node) if sub is not node}
    return sorted((node for node in found if id(node) not in inner), key=lambda n: (n.lineno, n.col_offset))


_FRAME_FACTS = "tcs014.frame.2"
_WRAPPER_FACTS = "tcs014.wrappers"
_RETURNS = "returns.name"


def _frame_facts(func_node, module) -> tuple[tuple[tuple[int, int], ...], tuple[Spot, ...]]:
    """(the def's break regions, its comprehensions of their own frame): plain data for the summary."""
    return loop_and_try_bodies(func_node), _spots(func_node, func_node.body, module)


def _wrapper_facts(decorator_node, module) -> tuple[Wrapper, ...]:
    out = []
    for wrapper in _wrappers(decorator_node):
        spots = _spots(wrapper, wrapper.body, module)
        if spots:
            first = wrapper.args.args[0].arg if wrapper.args.args else None
            out.append(Wrapper(wrapper.name, wrapper.lineno, first, spots))
    return tuple(out)


def _spots(scope, body, module) -> tuple[Spot, ...]:
    return tuple(Spot(node.lineno, node.col_offset, node.end_lineno or node.lineno,
                      node.end_col_offset or node.col_offset,
                      _free_names(node), _iter_proof(node.generators[0].iter, scope, module))
                 for node in _comprehensions(body))


def _in_regions(line: int, regions) -> bool:
    return any(start <= line <= end for start, end in regions)


def _wrappers(decorator_node) -> list[ast.FunctionDef]:
    """Nested defs of a decorator whose try body calls a parameter of an enclosing def (the wrapped function)."""
    out = []

    def visit(node, params: set[str]):
        for child in ast.walk(node):
            if child is node or not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if _calls_in_try(child, params):
                out.append(child)
        return out

    outer_params = {a.arg for a in [*decorator_node.args.posonlyargs, *decorator_node.args.args,
                                    *decorator_node.args.kwonlyargs]}
    for child in ast.walk(decorator_node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child is not decorator_node:
            outer_params |= {a.arg for a in [*child.args.posonlyargs, *child.args.args]}
    return [w for w in dict.fromkeys(visit(decorator_node, outer_params)) if w is not decorator_node]


def _calls_in_try(func_node, params: set[str]) -> bool:
    own = {a.arg for a in [*func_node.args.posonlyargs, *func_node.args.args, *func_node.args.kwonlyargs]}
    wrapped = params - own
    for node in walk_scope(func_node.body):
        if isinstance(node, ast.Try):
            for call in walk_scope(node.body):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in wrapped:
                    return True
    return False


def _free_names(comp) -> tuple[str, ...]:
    """The names the comprehension's frame reads from outside: they become the frame's locals.

    A module among them (the first parameter of an ``nn.Module`` method or of a wrapper around
    one) or a global bound to ``torch`` or one of its modules makes dynamo look at the frame
    (``has_tensor_in_frame``); otherwise it leaves it alone.
    """
    own_targets = {n.id for gen in comp.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
    parts = [*(gen.iter for gen in comp.generators[1:]), *(cond for gen in comp.generators for cond in gen.ifs)]
    parts += [comp.key, comp.value] if isinstance(comp, ast.DictComp) else [comp.elt]
    names = {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)} - own_targets
    return tuple(sorted(names))


_BUILDS_ITERABLE = {"list", "dict", "set", "frozenset", "sorted", "zip", "enumerate", "reversed", "map", "filter"}
_VIEWS = {"items", "keys", "values"}
_RETURNS_ITERABLE = {"dict", "list", "set", "frozenset", "str", "Dict", "List", "Set", "FrozenSet", "Mapping",
                     "MutableMapping", "Sequence", "Iterator", "Iterable"}


def _iter_proof(expr, scope, module, depth: int = 0) -> tuple[tuple[str, ...], ...] | None:
    """What proves the comprehension iterates something that is not a tuple, a tensor or a range.

    Dynamo takes a tuple iterator (a tensor iterates as one) or a range iterator as a frame input;
    the iterator of a dict, a dict view, a list, a set, a string, zip or enumerate it does not.
    None: nothing proves it; else the calls whose return annotations must prove it (empty: the
    code itself does). Calls are kept unresolved: they are resolved against the index at check
    time, since the callee may live in another file.
    """
    if depth > 3:
        return None
    if isinstance(expr, (ast.List, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp, ast.JoinedStr)):
        return ()
    if isinstance(expr, ast.Constant):
        return () if isinstance(expr.value, str) else None
    if isinstance(expr, ast.Name):
        values = _assigned(expr.id, walk_scope(scope.body))
        if not values and module.tree is not None:  # a module global
            values = _assigned(expr.id, module.tree.body)
        return _iter_proof(values[0], scope, module, depth + 1) if len(values) == 1 else None
    if isinstance(expr, ast.BoolOp):  # `x or {}`: every operand must be proven
        proofs = [_iter_proof(v, scope, module, depth + 1) for v in expr.values]
        return None if any(p is None for p in proofs) else tuple(call for p in proofs for call in p)
    if not isinstance(expr, ast.Call):
        return None
    if isinstance(expr.func, ast.Name) and expr.func.id in _BUILDS_ITERABLE:
        return ()
    if isinstance(expr.func, ast.Attribute) and expr.func.attr in _VIEWS and not expr.args:
        return ()
    call = _call_spec(expr.func, module)
    return (call,) if call is not None else None


def _returns_iterable(call: tuple[str, ...], module, index) -> bool:
    target = _call_target(call, module, index)
    return target is not None and target.derived(_RETURNS, _returns_name) in _RETURNS_ITERABLE


def _returns_name(func_node) -> str | None:
    returns = getattr(func_node, "returns", None)
    if isinstance(returns, ast.Subscript):
        returns = returns.value
    return returns.id if isinstance(returns, ast.Name) else returns.attr if isinstance(returns, ast.Attribute) else None


def _assigned(name: str, nodes) -> list[ast.expr]:
    """The values ``name = value`` / ``name: T = value`` binds in ``nodes``."""
    out = []
    for node in nodes:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) and node.value is not None else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            out.append(node.value)
    return out


def _call_spec(func, module) -> tuple[str, ...] | None:
    """The function a call runs, unresolved: a module function, or a method of a module-level instance."""
    if isinstance(func, ast.Name):
        return ("func", func.id)
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return None
    tree = module.tree
    for node in tree.body if tree is not None else ():
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                and any(isinstance(t, ast.Name) and t.id == func.value.id for t in node.targets):
            return ("method", node.value.func.id, func.attr)
    return None


def _call_target(call: tuple[str, ...], module, index):
    if call[0] == "func":
        return index.lookup_function(module.resolve(call[1]))
    klass = index.lookup_class(module.resolve(call[1]))
    return index.find_method(klass, call[2]) if klass is not None else None
