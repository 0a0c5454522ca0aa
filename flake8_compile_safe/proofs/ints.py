"""Python ints, integer dtypes, and slice lengths proven by straight-line reasoning."""

from __future__ import annotations

import ast

from ..fixdata import Proof, proven, unproven
from ..values import INTSTATE, dotted
from .scopes import bindings, scope_nodes
from .tensors import MAX_DEPTH, NO, SHAPE_CALLS, is_self_attr, related_classes, self_assignment, src

INTEGER_DTYPES = {"torch.long", "torch.int64", "torch.int", "torch.int32", "torch.int16", "torch.int8",
                  "torch.uint8", "torch.short"}
INT_METHODS = {"long", "int", "short"}
MAX_LEN_NAMES = ("max_len", "max_length", "max_seq_len", "max_seq_length", "max_cache_len", "max_cache_length",
                 "max_position_embeddings", "max_positions", "n_positions", "n_ctx", "block_size", "context_length",
                 "max_batch_len", "cache_size", "window_size", "max_target_positions", "max_source_positions")


# ---------------------------------------------------------------------------------------------
# Python ints


def int_proof(node: ast.AST, ctx, depth: int = 0) -> Proof:
    """Is ``node`` a Python int (or a SymInt: a shape) for certain?"""
    if depth > MAX_DEPTH:
        return unproven(f"`{src(node, 60)}`: too many steps")
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return proven("an int literal")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return int_proof(node.operand, ctx, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
        left, right = int_proof(node.left, ctx, depth + 1), int_proof(node.right, ctx, depth + 1)
        return left if not left.ok else right
    if isinstance(node, ast.Call):
        name = dotted(node.func)
        if name in ("int", "len") and ctx.module.resolve(name) == name:
            return proven(f"`{name}(...)` is an int")
        if isinstance(node.func, ast.Attribute) and node.func.attr in SHAPE_CALLS:
            return proven("a size")
        return unproven(f"`{src(node, 60)}` is not known to be an int")
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        return proven("a size")
    if isinstance(node, ast.Attribute):
        if ctx.value(node).value == INTSTATE:
            return proven("a Python int attribute")
        return unproven(f"`{src(node, 60)}` is not known to be an int")
    if isinstance(node, ast.Name):
        scope = bindings(ctx.func.node)
        if node.id in scope.params:
            arg = scope.params[node.id]
            if arg is not None and arg.annotation is not None and dotted(arg.annotation) == "int":
                return proven(f"`{node.id}: int`")
            return unproven(f"parameter `{node.id}` is not annotated `int`")
        values = scope.of(node.id)
        if not values:
            return unproven(f"`{node.id}` is not bound here")
        for value in values:
            if isinstance(value, tuple) and value[0] == "iter":
                it = value[1]
                if isinstance(it, ast.Call) and dotted(it.func) == "range":
                    continue
                return unproven(f"`{node.id}` is a loop variable")
            if isinstance(value, tuple) and value[0] == "aug":
                continue
            if not isinstance(value, ast.AST):
                return unproven(f"`{node.id}` is bound by a statement the fixer does not follow")
            proof = int_proof(value, ctx, depth + 1)
            if not proof.ok:
                return unproven(f"`{node.id}`: {proof.why}")
        return proven(f"`{node.id}` is only ever an int")
    return unproven(f"`{src(node, 60)}` is not known to be an int")


def integer_dtype_proof(node: ast.AST, ctx) -> Proof:
    """``node`` (a tensor) has an integer dtype: every allocation of it names one."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in INT_METHODS:
        return proven(f"`.{node.func.attr}()`")
    if not isinstance(node, ast.Attribute):
        return unproven(f"the dtype of `{src(node, 60)}` is not known")
    owner = ctx.class_of(ctx.value(node.value)) if not is_self_attr(node) else (ctx.self_cls or ctx.func.cls)
    if owner is None:
        return unproven(f"the class of `{src(node.value, 60)}` is not known")
    values = []
    for cls in related_classes(ctx.index, owner):
        for method in cls.methods.values():
            for stmt in scope_nodes(method.node):
                value = self_assignment(stmt, node.attr)
                if value is not NO and value is not None:
                    values.append((cls.module, value))
    if not values:
        return unproven(f"no allocation of `{node.attr}` found")
    for module, value in values:
        if not _integer_allocation(module, value):
            return unproven(f"`{src(value, 60)}` does not name an integer dtype")
    return proven(f"`{node.attr}` is allocated with an integer dtype")


def _integer_allocation(module, value: ast.AST) -> bool:
    if not isinstance(value, ast.Call):
        return False
    for keyword in value.keywords:
        if keyword.arg == "dtype":
            name = dotted(keyword.value)
            return bool(name) and module.resolve(name) in INTEGER_DTYPES
    name = dotted(value.func)
    resolved = module.resolve(name) if name else ""
    if resolved == "torch.tensor" and value.args and isinstance(value.args[0], ast.Constant):
        return type(value.args[0].value) is int
    if resolved == "torch.arange":
        return all(isinstance(a, ast.Constant) and type(a.value) is int for a in value.args[1:]) and bool(value.args)
    return False


# ---------------------------------------------------------------------------------------------
# Straight-line reasoning about slice lengths


_TRANSPARENT = {"item", "clone", "long", "int", "detach"}


def normalise(node: ast.AST, ctx, stop: ast.AST, depth: int = 0) -> ast.AST:
    """``node`` with single-assignment locals replaced by their values and value-preserving wrappers
    (``int(...)``, ``.item()``, ``.clone()``) dropped, as long as the state they read is not written
    between the binding and ``stop`` (the statement that uses them)."""
    if depth > MAX_DEPTH:
        return node
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1:
            return normalise(node.args[0], ctx, stop, depth + 1)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _TRANSPARENT and not node.args:
            return normalise(node.func.value, ctx, stop, depth + 1)
        return node
    if isinstance(node, ast.BinOp):
        return ast.BinOp(normalise(node.left, ctx, stop, depth + 1), node.op,
                         normalise(node.right, ctx, stop, depth + 1))
    if isinstance(node, ast.Name):
        scope = bindings(ctx.func.node)
        stmt = scope.single_statement(node.id)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and _unchanged_between(stmt, stop, stmt.value, ctx):
            return normalise(stmt.value, ctx, stmt, depth + 1)
    return node


def _unchanged_between(first: ast.stmt, last: ast.stmt, value: ast.AST, ctx) -> bool:
    """``first`` and ``last`` sit in one block, ``first`` before ``last``, and nothing in between may
    change what ``value`` reads: no call, no assignment to a name or attribute ``value`` reads."""
    block = _block_of(ctx.func.node, first)
    if block is None or last not in block:
        return False
    i, j = block.index(first), block.index(last)
    if i >= j:
        return False
    read = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)}
    for stmt in block[i + 1:j]:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                return False
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                if any(_written_name(t) in read for t in targets):
                    return False
    return True


def _written_name(target: ast.AST) -> str | None:
    """The name or attribute whose value an assignment to ``target`` changes (``x``, ``self.x``, ``self.x[i]``)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return next((n for n in map(_written_name, target.elts) if n), None)
    if isinstance(target, ast.Starred):
        return _written_name(target.value)
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _block_of(func: ast.AST, stmt: ast.stmt) -> list[ast.stmt] | None:
    for node in [func, *scope_nodes(func)]:
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                return block
    return None


def slice_length(lower: ast.AST | None, upper: ast.AST, stmt: ast.stmt, ctx) -> tuple[str, str]:
    """(source of n, why) where ``upper`` is provably ``lower + n`` at ``stmt``; ("", why not) otherwise."""
    lo = normalise(lower, ctx, stmt) if lower is not None else ast.Constant(0)
    hi = normalise(upper, ctx, stmt)
    if isinstance(hi, ast.BinOp) and isinstance(hi.op, ast.Add):
        for start, n in ((hi.left, hi.right), (hi.right, hi.left)):
            if ast.dump(start) == ast.dump(lo) and _names_stable(n, stmt, ctx):
                if isinstance(lo, ast.Constant) and lo.value == 0 and lower is None:
                    break
                return src(n), f"the upper bound is the lower bound plus `{src(n)}`"
    if lower is None:
        return "", (f"the slice `[:{src(upper, 40)}]` has a data-dependent length: read the whole buffer and mask "
                    "the unwritten part where it is used (no general rewrite keeps the shape)")
    return "", (f"the slice length `{src(upper, 40)} - {src(lower, 40)}` is not provably a size known on the "
                "host")


def _names_stable(node: ast.AST, stmt: ast.stmt, ctx) -> bool:
    """The names ``node`` reads are parameters never rebound, or bound once before ``stmt``."""
    scope = bindings(ctx.func.node)
    for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
        if name in scope.params and not scope.of(name):
            continue
        if scope.single_statement(name) is not None and scope.single_statement(name).lineno < stmt.lineno:
            continue
        if name == "self":
            continue
        return False
    return not any(isinstance(n, ast.Call) and not (isinstance(n.func, ast.Attribute) and n.func.attr in SHAPE_CALLS)
                   for n in ast.walk(node))
