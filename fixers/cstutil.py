"""Small libcst helpers shared by the generic fixes and the recipes."""

from __future__ import annotations

import libcst as cst

_EMPTY = cst.parse_module("")


def code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


def expr(src: str) -> cst.BaseExpression:
    return cst.parse_expression(src)


def stmt(src: str) -> cst.BaseStatement:
    return cst.parse_statement(src)


def stmts(src: str) -> list[cst.BaseStatement]:
    return list(cst.parse_module(src).body)


def is_self_attr(node: cst.CSTNode, attr: str | None = None) -> bool:
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
        and (attr is None or node.attr.value == attr)
    )


def dotted(node: cst.CSTNode) -> str:
    """``torch.zeros`` for an Attribute chain of Names, '' otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr.value}" if inner else ""
    return ""


def body_of(node: cst.CSTNode):
    """The statement list of a def/class/if/for body (IndentedBlock), or None."""
    body = getattr(node, "body", None)
    if isinstance(body, cst.IndentedBlock):
        return body.body
    return None


def with_body(node, new_body):
    return node.with_changes(body=node.body.with_changes(body=tuple(new_body)))


def find_method(cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    for s in cls.body.body:
        if isinstance(s, cst.FunctionDef) and s.name.value == name:
            return s
    return None


def replace_method(cls: cst.ClassDef, name: str, new: cst.FunctionDef) -> cst.ClassDef:
    body = [new if isinstance(s, cst.FunctionDef) and s.name.value == name else s for s in cls.body.body]
    return with_body(cls, body)


def names_in(node: cst.CSTNode) -> set[str]:
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            out.add(n.value)

    node.visit(V())
    return out


class ReplaceNames(cst.CSTTransformer):
    """Replace every Name ``old`` (load context, not attribute names) by an expression."""

    def __init__(self, mapping: dict[str, cst.BaseExpression]):
        self.mapping = mapping

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)

    def leave_Name(self, original: cst.Name, updated: cst.Name):
        rep = self.mapping.get(original.value)
        return rep if rep is not None else updated


def has_decorator(fn: cst.FunctionDef, dotted_name: str) -> bool:
    return any(dotted(d.decorator) == dotted_name or code(d.decorator) == dotted_name for d in fn.decorators)


def add_decorator(fn: cst.FunctionDef, src: str) -> cst.FunctionDef:
    if has_decorator(fn, src):
        return fn
    return fn.with_changes(decorators=(cst.Decorator(decorator=expr(src)), *fn.decorators))
