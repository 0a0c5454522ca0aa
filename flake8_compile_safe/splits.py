"""The frames a graph break splits a compiled model into: where dynamo compiles, and recompiles, on its own.

Measured on torch 2.13 (docs/recall.md, "Frames a break splits off"): when dynamo meets a graph break
in a function it was inlining, it compiles the caller's frame up to the call, runs the call as a
frame of its own (the callee is compiled on its own, and meets the break again), and resumes the
caller in a new frame after the call. Where the call, or the break, lies inside a loop or a ``try``
body of the function, dynamo cannot resume there: it skips the whole frame and runs it eagerly,
and every function it calls becomes a frame of its own. Each of those frames has guards of its
own: it recompiles when its inputs change shape (a prompt, then one token at a time) where the
whole-model graph would have been compiled once and made dynamic once.

A prediction, from the call graph the walk built and the break findings of the other rules; the
compiled root is not known (every ``nn.Module.forward`` is one), so a function counts as split off
when some function on a path to the break calls it: it is its own frame whenever the model is
compiled above it. Findings are not changed and nothing here is reported by flake8:
:func:`predict` hands the frames to the validation, which checks them against dynamo's own frames.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .astwalk import walk_scope

if TYPE_CHECKING:
    from .rules.reached import ReachedFacts

# Keys of the facts each def keeps in the cached summary (FunctionInfo.derived)
_REGIONS = "splits.regions"
_SPAN = "splits.span"
_TORCH_FACTS = "splits.torch.2"
_WRAPPERS = "splits.wrappers"


@dataclass(frozen=True)
class SplitFrame:
    """A frame dynamo compiles on its own because of a break: ``line`` is where its events point.

    ``kind``: ``"callee"`` (a function on a path to the break, called by another: its ``def``),
    ``"resume"`` (the caller resumed after the call at ``line``), ``"skipped-callee"`` (a
    function called by a frame dynamo skips because the break is inside its loop or try body: its
    ``def``), ``"wrapper"`` (the nested def a project decorator wraps such a function in: what its
    caller really calls). ``line`` is the code object's first line, as dynamo names it (the first
    decorator's); ``end_line`` the def's last, to tell whether it ran.
    """

    path: str
    line: int
    end_line: int
    function: str
    kind: str


def is_break(finding) -> bool:
    """The finding's consequence is a graph break or a frame skip (not a guard, not a CUDA-graph skip)."""
    text = finding.consequence or ""
    return "graph break" in text or "frame skip" in text


def predict(facts: "ReachedFacts") -> dict[str, tuple[SplitFrame, ...]]:
    """{function holding a break finding: the frames its breaks split off}."""
    breaks: dict[str, set[int]] = {}
    for finding in facts.findings:
        if is_break(finding):
            breaks.setdefault(finding.function, set()).add(finding.line)
    callers = callers_of(facts.calls)
    return {function: tuple(sorted(_frames(function, breaks, callers, facts), key=_order))
            for function in sorted(breaks)}


def _order(frame: SplitFrame) -> tuple:
    return frame.path, frame.line, frame.kind, frame.function


def _frames(function: str, breaks: dict[str, set[int]], callers: dict[str, set[str]],
            facts: "ReachedFacts") -> set[SplitFrame]:
    on_path = reaching((function,), callers)
    out: set[SplitFrame] = set()
    for name in on_path:
        info = facts.function(name)
        if info is None:
            continue
        wrappers = _wrappers(info, facts.index)
        called = bool(callers.get(name, set()) & on_path)
        # A decorated function is called by its wrapper, the frame its callers (or the compiler) enter:
        # the wrapper breaks at that call, so the function is a frame of its own even as the root.
        if (called or wrappers) and _dynamo_traces(info, facts.index):
            out.add(_frame(info, name, "callee"))
        if called:
            out.update(wrappers)
        calls = sorted(line for (line, _col), callees in facts.sites(name).items() if callees & on_path)
        points = calls + sorted(breaks.get(name, ()) if name == function else ())
        regions = info.derived(_REGIONS, loop_and_try_bodies) or ()
        if any(start <= point <= stop for point in points for start, stop in regions):
            for callee in facts.calls.get(name, ()):
                target = facts.function(callee)
                if target is None:
                    continue
                # no break below it: the callee runs inside its wrapper's frame, if it has one
                target_wrappers = _wrappers(target, facts.index)
                if target_wrappers:
                    out.update(target_wrappers)
                elif _dynamo_traces(target, facts.index):
                    out.add(_frame(target, callee, "skipped-callee"))
        else:
            path = str(info.module.path)
            out.update(SplitFrame(path, line, line, name, "resume") for line in calls)
    return out


def _frame(info, name: str, kind: str) -> SplitFrame:
    first, end = info.derived(_SPAN, _code_span) or (info.lineno, info.lineno)
    return SplitFrame(str(info.module.path), first, end, name, kind)


def _dynamo_traces(info, index) -> bool:
    """Whether dynamo may take the function's frame at all: it leaves a frame alone when nothing in
    it is torch (``has_tensor_in_frame``: no global bound to a torch module, no argument that is a
    tensor, an nn.Module, or a plain list, tuple or dict holding one). Statically: a method of an
    ``nn.Module``, a body that reads a torch global, or a parameter that may hold a tensor (not
    annotated, ``*args``/``**kwargs``, or annotated with a type that names ``Tensor`` or
    ``Module``); ``self`` of another class is an object dynamo does not look into."""
    if info.cls is not None and index.is_nn_module(info.cls):
        return True
    globals_read, params = info.derived(_TORCH_FACTS, _torch_facts) or ((), ())
    if any(_is_torch(info.module.resolve(name)) for name in globals_read):
        return True
    if info.cls is not None and params and not _is_static(info):
        params = params[1:]  # self or cls: an instance of a class that is not a module
    return any(names is None or any(_may_be_tensor(name, info.module, index) for name in names) for names in params)


# Annotations that say a value holds no tensor (and the typing wrappers around them).
_NO_TENSOR = {"int", "float", "bool", "str", "bytes", "complex", "None", "Optional", "Union", "Literal",
              "typing.Optional", "typing.Union", "typing.Literal"}


def _may_be_tensor(name: str, module, index) -> bool:
    """A name in a parameter's annotation: a tensor or module, or a type that may hold one (an alias, a
    container, a named tuple, an outside class), unless it is a plain scalar or a project class that
    is neither a module nor a named tuple (an object dynamo does not look into)."""
    if name in _NO_TENSOR:
        return False
    if "Tensor" in name or "Module" in name:
        return True
    klass = index.lookup_class(module.resolve(name))
    return klass is None or index.is_nn_module(klass) or any("NamedTuple" in base for base in klass.bases)


def _is_torch(qualified: str) -> bool:
    return qualified == "torch" or qualified.startswith("torch.")


def _is_static(info) -> bool:
    return "staticmethod" in info.decorators


def _torch_facts(node) -> tuple[tuple[str, ...], tuple[tuple[str, ...] | None, ...]]:
    """(names the body reads and does not bind, as candidate globals; the dotted names in each parameter's
    annotation, None for none and for ``*args``/``**kwargs``)."""
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    annotations = [_annotation_names(a.annotation) if a.annotation is not None else None for a in params]
    annotations += [None for star in (args.vararg, args.kwarg) if star is not None]
    bound = {a.arg for a in params} | {star.arg for star in (args.vararg, args.kwarg) if star is not None}
    read = set()
    for sub in walk_scope(node.body):
        if isinstance(sub, ast.Name):
            (read if isinstance(sub.ctx, ast.Load) else bound).add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in sub.names}
    return tuple(sorted(read - bound)), tuple(annotations)


def _annotation_names(annotation) -> tuple[str, ...] | None:
    """The dotted names an annotation is made of (``Optional[torch.Tensor]``: Optional, torch.Tensor);
    None for a string annotation or anything else it cannot read (then: may hold a tensor)."""
    names = []
    for sub in ast.walk(annotation):
        if isinstance(sub, ast.Constant) and sub.value is not None:
            return None
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            names.append(f"{sub.value.id}.{sub.attr}")
        elif isinstance(sub, ast.Name) and not any(isinstance(parent, ast.Attribute) and parent.value is sub
                                                   for parent in ast.walk(annotation)):
            names.append(sub.id)
        elif isinstance(sub, ast.Constant):
            names.append("None")
    return tuple(names)


def _wrappers(info, index) -> set[SplitFrame]:
    """The frames of the wrappers the function's project decorators put around it."""
    out = set()
    for name in info.decorator_names():
        decorator = index.lookup_function(name)
        if decorator is None:
            continue
        for first, end, wrapper in decorator.derived(_WRAPPERS, _wrapper_spans) or ():
            out.add(SplitFrame(str(decorator.module.path), first, end, f"{decorator.qualname}.{wrapper}", "wrapper"))
    return out


def callers_of(calls: dict[str, set[str]]) -> dict[str, set[str]]:
    """{function: the functions that call it}, from {function: the functions it calls}."""
    callers: dict[str, set[str]] = {}
    for caller, callees in calls.items():
        for callee in callees:
            callers.setdefault(callee, set()).add(caller)
    return callers


def reaching(targets, callers: dict[str, set[str]]) -> set[str]:
    """``targets`` and every function on a call path to one of them."""
    out, stack = set(targets), list(targets)
    while stack:
        for caller in callers.get(stack.pop(), ()):
            if caller not in out:
                out.add(caller)
                stack.append(caller)
    return out


def _code_span(node) -> tuple[int, int]:
    """(first line of the code object, as dynamo names it: the first decorator's; the def's last line)."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    return first, getattr(node, "end_lineno", None) or node.lineno


def _wrapper_spans(decorator_node) -> tuple[tuple[int, int, str], ...]:
    """(first line, last line, name) of each def nested in a decorator that calls a parameter of a def
    around it (the function it wraps) and is returned: ``def wrapper(*a): return func(*a)``."""
    out = []
    params = {a.arg for a in [*decorator_node.args.posonlyargs, *decorator_node.args.args]}
    for node in ast.walk(decorator_node):
        if node is decorator_node or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        calls = {c.func.id for c in walk_scope(node.body) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        returned = any(isinstance(r, ast.Return) and isinstance(r.value, ast.Name) and r.value.id == node.name
                       for r in ast.walk(decorator_node))
        if returned and calls & (params | _outer_params(decorator_node, node)):
            out.append((*_code_span(node), node.name))
    return tuple(out)


def _outer_params(decorator_node, nested) -> set[str]:
    """Parameters of the defs between the decorator and ``nested`` (a decorator factory's inner decorator)."""
    names: set[str] = set()
    for node in ast.walk(decorator_node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node not in (nested, decorator_node) \
                and any(child is nested for child in ast.walk(node)):
            names |= {a.arg for a in [*node.args.posonlyargs, *node.args.args]}
    return names


def loop_and_try_bodies(func_node) -> tuple[tuple[int, int], ...]:
    """Line ranges of the def's own loop and ``try`` bodies: dynamo cannot resume after a break there."""
    return tuple((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno)
                 for node in walk_scope(func_node.body)
                 if isinstance(node, (ast.Try, ast.For, ast.AsyncFor, ast.While)) and node.body)
