"""What a def returns grown from its parameters by ``torch.cat``: a derived fact of one def (TCS016).

Plain data (:class:`GrownFacts`), computed from the def alone, so the cached summary keeps it and
a warm run parses nothing for it. Calls are kept unresolved (:class:`Through`: the call's
position and which argument the parameter went in as); the rule resolves them against the
calls the walk followed.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

from ..values import dotted
from .base import source_of

FACT = "grown-state-returns"
_CATS = {"torch.cat", "torch.concat", "torch.concatenate"}
# Methods that return the same tensor (or a copy of it) with the same size.
_SAME_SIZE = {"detach", "contiguous", "clone", "to", "float", "half", "bfloat16", "type_as"}
WHOLE = -1  # the return value as a whole (not an element of a tuple literal)


class Through(NamedTuple):
    """A value that came out of a call that was handed (part of) a parameter."""

    line: int
    col: int
    element: int | str  # which element of the call's result: position, key or keyword (WHOLE: all of it)
    argument: int | str  # where the parameter went in: positional index or keyword
    param: str


class GrownFacts(NamedTuple):
    positional: tuple[str, ...]  # positional parameter names, `self` included
    optional: tuple[str, ...]  # parameters that default to None: a state the first call may leave out
    bound_method: bool  # called on an object: positional argument i is parameter i + 1
    # (return element, parameter, the torch.cat source) grown in this def itself
    direct: tuple[tuple[int | str, str, str], ...]
    # (return element, Through): returned as some call gave it back
    through: tuple[tuple[int | str, Through], ...]


def grown_facts(node) -> GrownFacts | None:
    """What one def returns grown from its parameters, as plain data (see :class:`GrownFacts`)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    args = node.args
    positional = tuple(a.arg for a in (*args.posonlyargs, *args.args))
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    decorators = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in node.decorator_list}
    bound = bool(positional) and positional[0] in ("self", "cls") and "staticmethod" not in decorators
    tracked = [p.arg for p in params if p.arg not in ("self", "cls")]
    if not tracked or not _has_cat_or_call_return(node):
        return GrownFacts(positional, (), bound, (), ())
    flow = _Flow(tracked)
    for stmt, weak in _statements(node.body):
        flow.statement(stmt, weak)
    return GrownFacts(positional, tuple(optional_parameters(args)), bound, tuple(flow.direct), tuple(flow.through))


def _has_cat_or_call_return(node) -> bool:
    """The quick test: a def that returns nothing, or never concatenates nor calls, grows nothing."""
    returns = cats = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Return) and sub.value is not None:
            returns = True
        elif isinstance(sub, ast.Call):
            cats = True
        if returns and cats:
            return True
    return False


def optional_parameters(args: ast.arguments) -> list[str]:
    """The parameters that default to ``None``."""
    positional = [*args.posonlyargs, *args.args]
    defaults = dict(zip([p.arg for p in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update({p.arg: d for p, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    out = []
    for param in [*positional, *args.kwonlyargs]:
        default = defaults.get(param.arg)
        if isinstance(default, ast.Constant) and default.value is None:
            out.append(param.arg)
    return out


def _statements(body, weak: bool = False):
    """(statement, weak) in source order, nested blocks included, nested defs and classes left out.

    ``weak``: under an ``if``, ``try`` or ``match``, where an assignment may not run, so it adds to
    what a name holds (``if states is None: states = [...]`` keeps the argument); elsewhere it
    replaces it (``x = torch.cat((prefix, x)); x = self.proj(x)``: ``x`` is no longer grown)."""
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield stmt, weak
        branching = isinstance(stmt, (ast.If, ast.Try, ast.Match)) or type(stmt).__name__ == "TryStar"
        for name in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(stmt, name, None) or [], weak or branching)
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _statements(handler.body, True)
        for case in getattr(stmt, "cases", None) or []:
            yield from _statements(case.body, True)


class _Flow:
    """A may-analysis in source order: which names hold a parameter, a grown tensor, or a call's result."""

    def __init__(self, params: list[str]):
        self.holds: dict[str, str] = {p: p for p in params}  # name -> parameter it holds (part of)
        self.grown: dict[str, tuple[str, str]] = {}  # name -> (parameter, torch.cat source)
        self.outs: dict[str, list[Through]] = {}  # name -> call results it holds
        self.tuples: dict[str, list] = {}  # name -> elements of the tuple literal bound to it
        self.direct: list[tuple[int | str, str, str]] = []
        self.through: list[tuple[int | str, Through]] = []

    # -- expressions ---------------------------------------------------------------------------
    def held(self, expr) -> str | None:
        """The parameter ``expr`` holds (part of): the name, an item of it, a same-size copy."""
        if isinstance(expr, ast.Name):
            return self.holds.get(expr.id)
        if isinstance(expr, ast.Subscript):
            return self.held(expr.value)
        if isinstance(expr, ast.Starred):
            return self.held(expr.value)
        if _same_size_call(expr):
            return self.held(expr.func.value)
        return None

    def grown_in(self, expr) -> tuple[str, str] | None:
        """(parameter, torch.cat source) when ``expr`` is, or holds, a parameter grown by torch.cat."""
        if isinstance(expr, ast.Name):
            return self.grown.get(expr.id)
        if isinstance(expr, (ast.Subscript, ast.Starred)):
            return self.grown_in(expr.value)
        if isinstance(expr, (ast.Tuple, ast.List)):
            return next(filter(None, map(self.grown_in, expr.elts)), None)
        if _joins_containers(expr):
            return self.grown_in(expr.left) or self.grown_in(expr.right)
        if isinstance(expr, ast.Call):
            if _same_size_call(expr):
                return self.grown_in(expr.func.value)
            if dotted(expr.func) in _CATS and expr.args and isinstance(expr.args[0], (ast.List, ast.Tuple)):
                for part in expr.args[0].elts:
                    if _trimmed(part):
                        continue  # `torch.cat([state[:, 1:], new])`: a sliding window, growth not proven
                    param = self.held(part)
                    if param is not None:
                        return param, source_of(expr)
                return next(filter(None, map(self.grown_in, expr.args[0].elts)), None)
        return None

    def outs_of(self, expr) -> list[Through]:
        """The call results ``expr`` is or holds (``out`` of ``out, s = f(x, s)``, a container of them)."""
        if isinstance(expr, ast.Name):
            return self.outs.get(expr.id, [])
        if isinstance(expr, ast.Starred):
            return self.outs_of(expr.value)
        if isinstance(expr, (ast.Tuple, ast.List)):
            return [t for elt in expr.elts for t in self.outs_of(elt)]
        if _joins_containers(expr):
            return self.outs_of(expr.left) + self.outs_of(expr.right)
        if isinstance(expr, ast.Call):
            if _same_size_call(expr):
                return self.outs_of(expr.func.value)
            return self.call_results(expr, WHOLE)
        return []

    def call_results(self, call: ast.Call, element: int | str) -> list[Through]:
        """What a call gives back for each parameter it is handed (element ``element`` of its result)."""
        out = []
        for i, arg in enumerate(call.args):
            param = self.held(arg)
            if param is not None and not isinstance(arg, ast.Starred):
                out.append(Through(call.lineno, call.col_offset, element, i, param))
        for keyword in call.keywords:
            param = self.held(keyword.value) if keyword.arg else None
            if param is not None:
                out.append(Through(call.lineno, call.col_offset, element, keyword.arg, param))
        return out

    # -- statements ----------------------------------------------------------------------------
    def statement(self, stmt, weak: bool) -> None:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self.bind(target, stmt.value, weak)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.bind(stmt.target, stmt.value, weak)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            self.bind(stmt.target, ast.BinOp(stmt.target, ast.Add(), stmt.value), weak)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.bind_loop(stmt.target, stmt.iter)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self.container_call(stmt.value)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            self.returned(stmt.value)

    def bind(self, target, value, weak: bool) -> None:
        if isinstance(target, ast.Name):
            self._bind_name(target.id, value, weak)
        elif _item_of_name(target):
            self._store_item(target.value.id, self.grown_in(value), self.outs_of(value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            names = target.elts
            if isinstance(value, ast.Call) and not _same_size_call(value) and dotted(value.func) not in _CATS:
                for i, elt in enumerate(names):
                    if isinstance(elt, ast.Name):
                        self._replace(elt.id, weak, outs=self.call_results(value, i))
                    elif _item_of_name(elt):  # `out, caches[i] = layer(x, caches[i])`
                        self._store_item(elt.value.id, None, self.call_results(value, i))
                return
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(names):
                for elt, part in zip(names, value.elts):
                    self.bind(elt, part, weak)
                return
            param, grown = self.held(value), self.grown_in(value)
            for elt in names:
                if isinstance(elt, ast.Name):
                    self._replace(elt.id, weak, param=param, grown=grown)

    def _bind_name(self, name: str, value, weak: bool) -> None:
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Call) \
                and isinstance(value.slice, ast.Constant) and type(value.slice.value) in (int, str):
            outs = self.call_results(value.value, value.slice.value)  # `s = f(x, s)[1]`, `f(x, s)["cache"]`
        else:
            outs = self.outs_of(value)
        self._replace(name, weak, param=self.held(value), grown=self.grown_in(value), outs=outs,
                      elements=list(value.elts) if isinstance(value, ast.Tuple) else None)

    def _replace(self, name: str, weak: bool, param=None, grown=None, outs=(), elements=None) -> None:
        """Bind ``name`` to what the value holds (computed before the old binding goes)."""
        if not weak:
            for table in (self.holds, self.grown, self.outs, self.tuples):
                table.pop(name, None)
        if param is not None:
            self.holds.setdefault(name, param)
        if grown is not None:
            self.grown.setdefault(name, grown)
        self._add_outs(name, list(outs))
        if elements is not None:
            self.tuples[name] = elements

    def _add_outs(self, name: str, found: list[Through]) -> None:
        if found:
            self.outs.setdefault(name, []).extend(t for t in found if t not in self.outs.get(name, []))

    def bind_loop(self, target, iterable) -> None:
        """``for s in states``, ``for s, layer in zip(states, layers)``, ``for i, s in enumerate(states)``,
        and ``for i, (layer, s) in enumerate(zip(layers, states))``."""
        if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and isinstance(target, ast.Tuple):
            if iterable.func.id == "zip" and len(target.elts) == len(iterable.args):
                for elt, source in zip(target.elts, iterable.args):
                    self.bind_loop(elt, source)
                return
            if iterable.func.id == "enumerate" and iterable.args and len(target.elts) == 2:
                self._hold_loop(target.elts[0], None)
                self.bind_loop(target.elts[1], iterable.args[0])
                return
        self._hold_loop(target, iterable)

    def _hold_loop(self, target, source) -> None:
        param = self.held(source) if source is not None else None
        names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        for elt in names:
            if isinstance(elt, ast.Name):
                self._replace(elt.id, False, param=param)

    def _store_item(self, container: str, grown, outs: list[Through]) -> None:
        """``xs[i] = v``: the container now holds ``v`` too (as ``xs.append(v)`` would)."""
        if grown is not None:
            self.grown.setdefault(container, grown)
        self._add_outs(container, list(outs))

    def container_call(self, call: ast.Call) -> None:
        """``xs.append(v)``, ``xs.extend(vs)``, ``xs.insert(i, v)``: the container now holds ``v``."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.attr in ("append", "extend", "insert") and call.args):
            return
        value = call.args[-1]
        grown = self.grown_in(value)
        if grown is not None:
            self.grown.setdefault(func.value.id, grown)
        self._add_outs(func.value.id, self.outs_of(value))

    def returned(self, value) -> None:
        if isinstance(value, ast.Name) and value.id in self.tuples:
            value = ast.Tuple(self.tuples[value.id], ast.Load())
        parts = _returned_parts(value)
        for element, part in parts:
            grown = self.grown_in(part)
            if grown is not None and (element, grown[0], grown[1]) not in self.direct:
                self.direct.append((element, grown[0], grown[1]))
            for through in self.outs_of(part):
                if (element, through) not in self.through:
                    self.through.append((element, through))


def _returned_parts(value) -> list[tuple[int | str, ast.expr]]:
    """(element, expression) of a return: a tuple's positions, a dict literal's string keys, the
    keywords of an output object built in place (``Output(logits=x, cache=c)``), else the whole."""
    if isinstance(value, ast.Tuple):
        return list(enumerate(value.elts))
    if isinstance(value, ast.Dict) and value.keys and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
        return [(k.value, v) for k, v in zip(value.keys, value.values)]
    if isinstance(value, ast.Call) and len(value.keywords) > 1 and not value.args \
            and all(k.arg for k in value.keywords):
        return [(k.arg, k.value) for k in value.keywords]
    return [(WHOLE, value)]


def _item_of_name(target) -> bool:
    """``xs[i]`` / ``xs["k"]`` as an assignment target: an item stored into the container ``xs``."""
    return isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)


def _trimmed(expr) -> bool:
    """``state[..., k:]``, ``state[:, -n:]``, ``state[:, :n]``: a slice with a bound, so what is joined to it
    may only replace what the slice dropped (a sliding window); an element (``past[0]``) is not trimmed."""
    if not isinstance(expr, ast.Subscript):
        return False
    parts = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    return any(isinstance(p, ast.Slice) and (p.lower is not None or p.upper is not None) for p in parts) \
        or _trimmed(expr.value)


def _joins_containers(expr) -> bool:
    """``presents + (present,)``, ``[x] + rest``: a tuple or list joined, not tensors added
    (``scores + mask`` is arithmetic: the sum of a grown mask is no state handed back)."""
    return isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add) and any(
        isinstance(side, (ast.Tuple, ast.List)) for side in (expr.left, expr.right))


def _same_size_call(expr) -> bool:
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _SAME_SIZE
