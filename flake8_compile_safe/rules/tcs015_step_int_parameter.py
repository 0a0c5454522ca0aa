"""TCS015: an int parameter the function returns advanced (``return x, offset + T``): a per-call int."""

from __future__ import annotations

import ast

from ..astwalk import walk_branches, walk_scope
from ..values import TENSOR_VALUE
from .base import Example, Hit, Rule, source_of

_STEP_INTS = "step-int-parameters"


class StepIntParameter(Rule):
    code = "TCS015"
    name = "step-int-parameter"
    consequence = "a recompile per new value, then CUDA graphs re-record per value"
    why = ("the caller feeds the returned value back: dynamo specialises on a Python int argument (a guard "
           "`offset == 0`), recompiles when it changes, then makes it a SymInt input, and CUDA graph trees record "
           "one graph per distinct value")
    fix = ("carry the position as a 0-d tensor (`torch.tensor(offset)`, returned as `offset + T`), or keep it "
           "in a tensor buffer on the module")
    what_it_does = ("Flags, on a compiled path, the first use of an int parameter (annotated `int`, `Optional[int]`, "
                    "`Union[int, ...]`, or with an int default) that the same function returns advanced by a "
                    "size (a literal int, `len(...)`, a `.shape` entry, or a name bound to one): `return out, "
                    "offset + T`, or `offset += T` then `return ..., offset`. That is a streaming "
                    "position or step counter: the caller passes the returned value back on the next call, so the "
                    "int is new every call. A parameter the callers pass as a tensor is not flagged.")
    why_bad = ("Measured on torch 2.13: a Python int argument is specialised, so the second call (`offset` now "
               "`T`) recompiles (`offset == 0`, the guard named at the first use of the int); after that automatic "
               "dynamic shapes make it a SymInt graph input. Under `mode=\"reduce-overhead\"` CUDA graph trees "
               "record one graph per distinct tuple of SymInt inputs, so a position that grows every step "
               "re-records every step. EnCodec's streaming LM (`encodec/modules/transformer.py`, "
               "`return x, new_state, offset + T`) recompiles on exactly this. The same code with the position "
               "as a 0-d tensor compiles once.")
    use_instead_note = "Carry the position as a tensor, returned as one."
    fix_safety = ("Not rewritten: the callers that build and read the int (often outside the compiled code) "
                  "change with it.")
    INVALID = (
        Example('''\
import torch


def sin_embedding(positions, dim):
    return torch.sin(positions.float() / dim)


class StreamingEncoder(torch.nn.Module):
    def forward(self, x, offset: int = 0):
        T = x.shape[1]
        positions = torch.arange(T).view(1, -1, 1) + offset  # TCS015
        return x + sin_embedding(positions, x.shape[-1]), offset + T
'''),
        Example('''\
import torch


class Stepper(torch.nn.Module):
    def forward(self, x, step=0):
        y = x * step  # TCS015
        step += 1
        return y, step
'''),
    )
    VALID = (
        Example('''\
import torch


class StreamingEncoder(torch.nn.Module):
    def forward(self, x, offset: torch.Tensor):
        T = x.shape[1]
        positions = torch.arange(T).view(1, -1, 1) + offset  # a 0-d tensor: compiled once
        return x + positions, offset + T
'''),
        Example('''\
import torch


class Model(torch.nn.Module):
    def forward(self, x, scale: int = 2):
        y = x * scale  # returned unchanged: not a per-call value
        return y, scale


def pad_to(n: int, multiple: int = 8) -> int:
    return n + (-n) % multiple  # not reached from a compiled path
'''),
        Example('''\
from typing import Optional

import torch


def make_positions(mask, padding_idx: int):
    # a tensor plus the int: the int itself is not advanced
    return torch.cumsum(mask, dim=1).long() * mask + padding_idx


def with_special_tokens(ids: list[int], pair: Optional[list[int]] = None):
    return ids + pair if pair else ids  # lists of ints, not an int


class Embedding(torch.nn.Module):
    def forward(self, input_ids, padding_idx: int = 1):
        positions = make_positions(input_ids.ne(padding_idx).int(), padding_idx)
        return positions, with_special_tokens([1, 2], [3])
''', note="A tensor plus an int parameter, and a list of ints, are not a returned step."),
    )

    def check(self, stmt, ctx):
        step_ints = ctx.func.derived(_STEP_INTS, _step_ints)
        if not step_ints:
            return
        for node in ctx.nodes(ast.Name):
            for name, line, col, returned in step_ints:
                if node.id == name and node.lineno == line and node.col_offset == col:
                    if ctx.value(node).value == TENSOR_VALUE:
                        continue  # the callers pass a tensor here
                    yield Hit(node, f"`{name}` is a per-call int (returned as `{returned}`)",
                              data={"kind": "step-int", "parameter": name, "returned": returned})


def _step_ints(node) -> tuple:
    """((parameter, line, col of its first use, the advanced value returned), ...) of one def."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return ()
    ints = _int_parameters(node.args)
    if not ints or not any(_may_advance(sub, ints) for sub in walk_branches(node)):
        return ()  # the quick test first: most defs with an int parameter never add to it
    # Source order: the first advance and the first return decide what the message shows.
    body = sorted(walk_scope(node.body), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    sizes = _size_names(body, ints)
    advanced = {}  # `offset += T` (or `offset = offset + T`), then returned by name
    advances = set()  # the reads of the parameter that are its advance, not a use
    for sub in body:
        if isinstance(sub, ast.AugAssign) and isinstance(sub.op, ast.Add) and isinstance(sub.target, ast.Name) \
                and sub.target.id in ints and _is_size(sub.value, sizes):
            advanced.setdefault(sub.target.id, ast.unparse(sub))
        elif isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) \
                and sub.targets[0].id in ints and _adds(sub.value, sub.targets[0].id, sizes):
            advanced.setdefault(sub.targets[0].id, ast.unparse(sub))
            advances.update(id(side) for side in (sub.value.left, sub.value.right))
    returned = {}
    for sub in body:
        if not isinstance(sub, ast.Return) or sub.value is None:
            continue
        parts = sub.value.elts if isinstance(sub.value, ast.Tuple) else [sub.value]
        for part in parts:
            for name in ints:
                if _adds(part, name, sizes):
                    returned.setdefault(name, source_of(part))
                    advances.update(id(side) for side in (part.left, part.right))
                elif isinstance(part, ast.Name) and part.id == name and name in advanced:
                    returned.setdefault(name, advanced[name])
                    advances.add(id(part))
    found = []
    for name, shown in returned.items():
        uses = [sub for sub in body if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Load)
                and id(sub) not in advances]
        if uses:
            first = min(uses, key=lambda n: (n.lineno, n.col_offset))
            found.append((name, first.lineno, first.col_offset, shown))
    return tuple(found)


def _may_advance(node: ast.AST, ints: set[str]) -> bool:
    if isinstance(node, ast.AugAssign):
        return isinstance(node.target, ast.Name) and node.target.id in ints
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and any(
        isinstance(side, ast.Name) and side.id in ints for side in (node.left, node.right))


def _int_parameters(args: ast.arguments) -> set[str]:
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    positional = [*args.posonlyargs, *args.args]
    defaults = dict(zip([p.arg for p in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update({p.arg: d for p, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    out = set()
    for param in params:
        default = defaults.get(param.arg)
        if param.annotation is not None:
            if _is_int_annotation(param.annotation):
                out.add(param.arg)
        elif isinstance(default, ast.Constant) and type(default.value) is int:
            out.add(param.arg)
    return out


def _is_int_annotation(node: ast.AST) -> bool:
    """``int``, ``Optional[int]``, ``int | None``, ``Union[int, ...]`` (not ``list[int]``).

    Not ``StaticKinds.annotation``: there a union with a tensor is a tensor, while here
    ``Union[int, Tensor]`` (EnCodec's ``offset``) is an int whenever the caller passes one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(node, ast.Name):
        return node.id == "int"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_int_annotation(node.left) or _is_int_annotation(node.right)
    if isinstance(node, ast.Subscript):
        outer = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
        if outer in ("Optional", "Union"):
            members = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return any(_is_int_annotation(member) for member in members)
    return False


def _adds(expr: ast.AST, name: str, sizes: set[str]) -> bool:
    """``name + n`` or ``n + name`` with ``n`` a size (a literal int, ``len(...)``, ``x.shape[i]``,
    ``x.size(i)``, or a name bound to one): the parameter advanced, an int still."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add)):
        return False
    left, right = expr.left, expr.right
    if isinstance(right, ast.Name) and right.id == name:
        left, right = right, left
    return isinstance(left, ast.Name) and left.id == name and _is_size(right, sizes)


def _is_size(expr: ast.AST, sizes: set[str]) -> bool:
    if isinstance(expr, ast.Constant):
        return type(expr.value) is int
    if isinstance(expr, ast.Name):
        return expr.id in sizes
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Name):
            return func.id == "len"
        return isinstance(func, ast.Attribute) and func.attr == "size" and bool(expr.args)
    if isinstance(expr, ast.Subscript):
        return isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape"
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
        return _is_size(expr.left, sizes) and _is_size(expr.right, sizes)
    return False


def _size_names(body: list, ints: set[str]) -> set[str]:
    """Names the def binds to sizes: ``B, T, C = x.shape``, ``T = x.shape[1]``, ``n = len(xs)``."""
    sizes = set(ints)
    for sub in body:
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1):
            continue
        target, value = sub.targets[0], sub.value
        if isinstance(target, ast.Tuple) and (
                (isinstance(value, ast.Attribute) and value.attr == "shape")
                or (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr == "size" and not value.args)):
            sizes.update(elt.id for elt in target.elts if isinstance(elt, ast.Name))
        elif isinstance(target, ast.Name) and _is_size(value, sizes):
            sizes.add(target.id)
    return sizes
