"""TCS008: an op whose output shape depends on tensor data (nonzero, boolean masks, unique, ...)."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER
from ..values import TENSOR_VALUE
from .base import Example, Hit, Rule, source_of

SHAPE_OPS = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount"}
LOOPS = (ast.For, ast.AsyncFor, ast.While)


class DataDependentShape(Rule):
    code = "TCS008"
    name = "data-dependent-shape"
    consequence = "a graph break (a whole-frame skip inside a loop)"
    why = ("the op's output shape depends on tensor values, which dynamo cannot trace without "
           "capture_dynamic_output_shape_ops ('Dynamic shape operator')")
    fix = ("use a fixed-size form (torch.where(mask, x, 0), masked_fill, x * mask, nonzero_static(size=...)) or "
           "set torch._dynamo.config.capture_dynamic_output_shape_ops = True")
    what_it_does = ("Flags, on a compiled path, ops whose output shape depends on tensor data: `torch.nonzero` / "
                    "`.nonzero()`, `torch.argwhere`, one-argument `torch.where(mask)`, `masked_select`, "
                    "`unique` / `unique_consecutive`, `bincount`, reading with a boolean mask (`x[mask]`, the "
                    "mask a comparison, `isnan`, `.bool()`, a `torch.bool` tensor) and `repeat_interleave` with "
                    "tensor repeats. Not flagged: `torch.where(c, x, y)`, writes through a mask "
                    "(`x[mask] = 0`), `repeat_interleave` with an int, `nonzero_static`.")
    why_bad = ("Measured on torch 2.13 (default config): each of these is a graph break ('Dynamic shape "
               "operator'), the graph after it is compiled for the observed size (a recompile when it changes), "
               "and inside a `for`/`while` loop dynamo skips the whole frame and runs it eagerly. A "
               "mixture-of-experts router that gathers each expert's tokens with `nonzero` or `where(mask)` does "
               "this once per expert per layer.")
    use_instead_note = ("Keep shapes fixed: select with `torch.where(mask, x, 0)` or multiply by the mask, use "
                        "`nonzero_static(size=...)`, or compute every expert on every token and weight the results.")
    fix_safety = "No tensor-index rewrite: the fixed-size form changes the shapes downstream code sees."
    fixes = (EAGER_HELPER,)
    INVALID = (
        Example('''\
import torch


class Router(torch.nn.Module):
    def forward(self, x, scores):
        chosen = scores.argmax(-1)
        out = torch.zeros_like(x)
        for e in range(4):
            mask = chosen == e
            idx = torch.nonzero(mask).squeeze(-1)  # TCS008
            rows = torch.where(mask)[0]  # TCS008
            out[idx] = out[idx] + x[mask]  # TCS008: x[mask] reads a data-dependent number of rows
        counts = torch.bincount(chosen)  # TCS008
        return out, x.repeat_interleave(counts, dim=0)  # TCS008
'''),
    )
    VALID = (
        Example('''\
import torch


class Router(torch.nn.Module):
    def forward(self, x, scores):
        chosen = scores.argmax(-1)
        out = torch.zeros_like(x)
        for e in range(4):
            mask = (chosen == e).unsqueeze(-1)
            out = out + torch.where(mask, x, 0.0)
        x = x.clone()
        x[x < 0] = 0.0  # writing through a mask keeps the shape
        return out, x.repeat_interleave(2, dim=0)
'''),
    )

    def check(self, stmt, ctx):
        in_loop = None
        for node in ctx.nodes(ast.Call, ast.Subscript):
            what = self._shape_op(node, ctx)
            if what is None:
                continue
            if in_loop is None:
                in_loop = _in_loop(ctx.func.node, stmt)
            consequence = "a whole-frame skip (inside a loop)" if in_loop else "a graph break"
            yield Hit(node, f"{what}: output shape depends on tensor data", consequence=consequence,
                      data={"kind": "shape-op", "expr": source_of(node, 200), "in_loop": in_loop})

    def _shape_op(self, node, ctx) -> str | None:
        if isinstance(node, ast.Subscript):
            base = ctx.value(node.value)
            if not isinstance(node.ctx, ast.Load) or base.value not in (TENSOR_VALUE, None) or base.classes:
                return None  # a boolean tensor indexes tensors (and arrays) only
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if any(not isinstance(p, ast.Slice) and ctx.value(p).boolean for p in parts):
                return f"`{source_of(node)}` (a boolean-mask read)"
            return None
        func = node.func
        name = ctx.resolve_callee(node)
        short = name.rsplit(".", 1)[-1] if name.startswith("torch.") else None
        method = func.attr if isinstance(func, ast.Attribute) and short is None else None
        if method is not None:
            recv = ctx.value(func.value)
            if recv.value not in (TENSOR_VALUE, None) or recv.classes or recv.func or ctx.targets(node):
                method = None  # a project method of the same name, or a receiver proven not a tensor
        op = short or method
        if op in SHAPE_OPS:
            return f"`{source_of(node)}`"
        if op == "where" and short and len(node.args) == 1 and not node.keywords:
            return f"`{source_of(node)}` (one-argument where)"
        if op == "repeat_interleave":
            args = node.args[1:] if short else node.args
            repeats = args[0] if args else next((k.value for k in node.keywords if k.arg == "repeats"), None)
            if repeats is not None and ctx.value(repeats).value == TENSOR_VALUE:
                return f"`{source_of(node)}` (tensor repeats)"
        return None


def _in_loop(func_node, stmt) -> bool:
    """Whether ``stmt`` sits inside a for/while loop of the function (not of a nested def)."""
    stack = [(s, False) for s in func_node.body]
    while stack:
        current, looped = stack.pop()
        if current is stmt:
            return looped
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner = looped or isinstance(current, LOOPS)
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(current, name, None) or []:
                stack.append((child, inner))
    return False
