"""``ast.iter_child_nodes`` and ``ast.walk`` without their per-node generators.

The standard ones cost two generator frames per node (``iter_fields`` inside
``iter_child_nodes``) and test every field of every node; on a project of millions of nodes
they dominated the profile. These read, per node type, only the fields the grammar says hold
nodes (a table built once from the ``ast`` classes' signatures), and return the same nodes in
the same order (tests/test_astwalk.py checks it on real files).
"""

from __future__ import annotations

import ast
import re

_AST = ast.AST
# Node types that never have children: a walk that only looks for other nodes can drop them
# without changing the order of the rest (a breadth-first order minus leaves is the same order).
_LEAF_BASES = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.type_ignore)
_SIGNATURE = re.compile(r"^(\w+)\((.*)\)$")
_NOT_NODES = {"identifier", "string", "int", "constant", "object", "bytes"}


def _node_fields(cls: type) -> tuple[tuple[str, bool], ...] | None:
    """``(field, holds a list)`` for each field of ``cls`` that holds nodes, or None if unknown.

    Read from the signature in the class docstring (``Attribute(expr value, identifier attr,
    expr_context ctx)``); None when it does not list exactly ``cls._fields`` (then the generic
    path runs).
    """
    match = _SIGNATURE.match((cls.__doc__ or "").strip())
    if match is None:
        return () if not cls._fields and (cls.__doc__ or "").strip() == cls.__name__ else None
    if match.group(1) != cls.__name__:
        return None
    fields = []
    for part in match.group(2).split(","):
        words = part.split()
        if len(words) != 2:
            return None
        type_name, name = words
        fields.append((name, type_name.rstrip("*?"), type_name.endswith("*")))
    if tuple(name for name, _, _ in fields) != tuple(cls._fields):
        return None
    return tuple((name, is_list) for name, type_name, is_list in fields if type_name not in _NOT_NODES)


def _all_node_classes() -> list[type]:
    out, stack = [], [_AST]
    while stack:
        cls = stack.pop()
        out.append(cls)
        stack.extend(cls.__subclasses__())
    return out


def _tables() -> tuple[dict, dict]:
    children, branches = {}, {}
    leaf_type_names = {cls.__name__ for cls in _LEAF_BASES}
    for cls in _all_node_classes():
        fields = _node_fields(cls)
        if fields is None:
            continue
        children[cls] = fields
        # Without the fields whose type is a leaf kind (ctx, op, ops): what a search for other nodes needs.
        match = _SIGNATURE.match((cls.__doc__ or "").strip())
        leafy = set()
        if match is not None:
            for part in match.group(2).split(","):
                type_name, name = part.split()
                if type_name.rstrip("*?") in leaf_type_names:
                    leafy.add(name)
        branches[cls] = tuple((name, is_list) for name, is_list in fields if name not in leafy)
    return children, branches


_CHILD_FIELDS, BRANCH_FIELDS = _tables()
_BRANCH_FIELDS = BRANCH_FIELDS


def _generic_children(node: ast.AST) -> list[ast.AST]:
    out = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, _AST):
            out.append(value)
        elif isinstance(value, list):
            out.extend([item for item in value if isinstance(item, _AST)])
    return out


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """The direct children of ``node``, in ``ast.iter_child_nodes`` order."""
    fields = _CHILD_FIELDS.get(type(node))
    if fields is None:
        return _generic_children(node)
    out = []
    for name, is_list in fields:
        value = getattr(node, name, None)
        if value is None:
            continue
        if is_list:
            out.extend(filter(None, value))  # Dict.keys and kw_defaults hold None; nodes are truthy
        else:
            out.append(value)
    return out


def walk(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` (itself first), in ``ast.walk`` order (breadth first)."""
    return _breadth_first(node, _CHILD_FIELDS)


def walk_branches(node: ast.AST) -> list[ast.AST]:
    """``walk`` without the leaf nodes (contexts ``Load``/``Store``, operators): the others in the same order."""
    return _breadth_first(node, _BRANCH_FIELDS)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def walk_scope(nodes):
    """Nodes under ``nodes`` (a def's body) without entering nested functions, lambdas or classes,
    those in ``nodes`` itself included; depth first, in no source order."""
    stack = [node for node in nodes if not isinstance(node, _SCOPES)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in child_nodes(node) if not isinstance(child, _SCOPES))


def _breadth_first(node: ast.AST, table: dict) -> list[ast.AST]:
    out = [node]
    get = table.get
    i = 0
    # `out` doubles as the queue: a node's children are appended after everything queued before it.
    while i < len(out):
        current = out[i]
        i += 1
        fields = get(type(current))
        if fields is None:
            children = _generic_children(current)
            if table is _BRANCH_FIELDS:
                children = [child for child in children if not isinstance(child, _LEAF_BASES)]
            out.extend(children)
            continue
        for name, is_list in fields:
            value = getattr(current, name, None)
            if value is None:
                continue
            if is_list:
                out.extend(filter(None, value))
            else:
                out.append(value)
    return out
