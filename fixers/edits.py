"""Edits on one parsed file, keyed by the original libcst nodes, applied together in one pass.

A rule's fix proposes edits against the tree as parsed; :class:`Editor` applies all accepted ones at
once, so fixes of different findings in one file compose (an expression edit inside a statement that
another fix rewrites is seen by that rewrite, since builders receive the updated node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import libcst as cst

StatementBuilder = Callable[[cst.SimpleStatementLine], list[cst.BaseStatement]]
ExprBuilder = Callable[[cst.BaseExpression], cst.BaseExpression]


@dataclass
class EditSet:
    """The edits of one proposal (one fix of one or more findings)."""

    statements: dict[int, tuple[cst.CSTNode, StatementBuilder]] = field(default_factory=dict)
    exprs: dict[int, tuple[cst.CSTNode, ExprBuilder]] = field(default_factory=dict)
    decorate: dict[int, tuple[cst.FunctionDef, str]] = field(default_factory=dict)  # innermost decorator
    append: dict[int, tuple[cst.FunctionDef, list[str]]] = field(default_factory=dict)  # static marks, merged
    append_lines: dict[int, tuple[cst.FunctionDef, list[str]]] = field(default_factory=dict)  # statements
    methods: dict[int, tuple[cst.ClassDef, list[str]]] = field(default_factory=dict)  # new methods (source)
    post_init: dict[int, tuple[cst.ClassDef, list[str]]] = field(default_factory=dict)  # new __post_init__ marks

    def replace_statement(self, node: cst.CSTNode, build: StatementBuilder) -> "EditSet":
        self.statements[id(node)] = (node, build)
        return self

    def replace_expr(self, node: cst.CSTNode, build: ExprBuilder) -> "EditSet":
        self.exprs[id(node)] = (node, build)
        return self

    def add_decorator(self, fn: cst.FunctionDef, decorator: str) -> "EditSet":
        self.decorate[id(fn)] = (fn, decorator)
        return self

    def mark_static(self, fn: cst.FunctionDef, attr: str) -> "EditSet":
        self.append.setdefault(id(fn), (fn, []))[1].append(attr)
        return self

    def append_statements(self, fn: cst.FunctionDef, lines: list[str]) -> "EditSet":
        """Statements (source lines) appended to ``fn``'s body, before the static marks and a final return."""
        self.append_lines.setdefault(id(fn), (fn, []))[1].extend(lines)
        return self

    def mark_static_in_new_post_init(self, cls: cst.ClassDef, attr: str) -> "EditSet":
        self.post_init.setdefault(id(cls), (cls, []))[1].append(attr)
        return self

    def add_method(self, cls: cst.ClassDef, source: str) -> "EditSet":
        self.methods.setdefault(id(cls), (cls, []))[1].append(source)
        return self

    def claims(self) -> set[int]:
        """Nodes no other proposal may rewrite (decorations and appended marks compose, so they do not claim)."""
        return set(self.statements) | set(self.exprs)

    def merge(self, other: "EditSet") -> None:
        self.statements.update(other.statements)
        self.exprs.update(other.exprs)
        self.decorate.update(other.decorate)
        for key, (fn, attrs) in other.append.items():
            mine = self.append.setdefault(key, (fn, []))[1]
            mine.extend(a for a in attrs if a not in mine)
        for key, (fn, lines) in other.append_lines.items():
            self.append_lines.setdefault(key, (fn, []))[1].extend(lines)
        for key, (cls, sources) in other.methods.items():
            self.methods.setdefault(key, (cls, []))[1].extend(sources)
        for key, (cls, attrs) in other.post_init.items():
            mine = self.post_init.setdefault(key, (cls, []))[1]
            mine.extend(a for a in attrs if a not in mine)


class Editor(cst.CSTTransformer):
    """Applies an :class:`EditSet` to the module it was proposed against."""

    def __init__(self, edits: EditSet, torch_name: str):
        super().__init__()
        self.edits = edits
        self.torch = torch_name

    def on_leave(self, original, updated):
        entry = self.edits.exprs.get(id(original))
        if entry is not None:
            return entry[1](updated)
        if isinstance(original, cst.FunctionDef):
            updated = self._function(original, updated)
        if isinstance(original, cst.ClassDef):
            sources = list(self.edits.methods.get(id(original), (None, []))[1])
            marks = self.edits.post_init.get(id(original))
            if marks is not None:
                fn = cst.ensure_type(cst.parse_statement("def __post_init__(self):\n    pass\n"), cst.FunctionDef)
                fn = append_static_marks(fn.with_changes(body=fn.body.with_changes(body=())), marks[1], self.torch)
                sources.insert(0, cst.Module(body=[fn]).code)
            new = [cst.ensure_type(cst.parse_statement(src), cst.FunctionDef).with_changes(
                leading_lines=[cst.EmptyLine(indent=False)]) for src in sources]
            if new:
                updated = updated.with_changes(body=updated.body.with_changes(body=(*updated.body.body, *new)))
        if isinstance(original, (cst.IndentedBlock, cst.Module)):
            updated = self._block(original, updated)
        return super().on_leave(original, updated)

    # -- functions -----------------------------------------------------------------------------
    def _function(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        extra = self.edits.append_lines.get(id(original))
        if extra is not None:
            updated = append_statements(updated, extra[1])
        mark = self.edits.append.get(id(original))
        if mark is not None:
            updated = append_static_marks(updated, mark[1], self.torch)
        deco = self.edits.decorate.get(id(original))
        if deco is not None:
            updated = add_innermost_decorator(updated, deco[1])
        return updated

    # -- statements ----------------------------------------------------------------------------
    def _block(self, original, updated):
        body = []
        carried: list[cst.EmptyLine] = []
        changed = False
        for old, new in zip(original.body, updated.body):
            entry = self.edits.statements.get(id(old))
            if entry is None:
                replacement = [new]
            else:
                changed = True
                replacement = entry[1](new)
                if not replacement:  # removed: its comments move to the next statement
                    carried += list(new.leading_lines) + _trailing_comment(new)
                    continue
                # the statement's comments and blank lines above go above the first replacement, once
                replacement = [r.with_changes(leading_lines=()) if tuple(r.leading_lines) == tuple(new.leading_lines)
                               else r for r in replacement]
                first = replacement[0]
                replacement[0] = first.with_changes(leading_lines=(*new.leading_lines, *first.leading_lines))
            if carried:
                first = replacement[0]
                replacement[0] = first.with_changes(leading_lines=(*carried, *first.leading_lines))
                carried = []
            body.extend(replacement)
        if not changed:
            return updated
        if isinstance(updated, cst.IndentedBlock):
            if not body:
                body = [cst.SimpleStatementLine([cst.Pass()], leading_lines=carried)]
                carried = []
            return updated.with_changes(body=body, footer=(*carried, *updated.footer))
        return updated.with_changes(body=body, footer=(*carried, *updated.footer))


def _trailing_comment(stmt: cst.CSTNode) -> list[cst.EmptyLine]:
    """A statement's end-of-line comment, as a comment line of its own."""
    trailing = getattr(stmt, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        return [cst.EmptyLine(comment=trailing.comment)]
    return []


def add_innermost_decorator(fn: cst.FunctionDef, decorator: str) -> cst.FunctionDef:
    """``decorator`` closest to the ``def``: it wraps the plain function, under @property and friends."""
    new = cst.Decorator(decorator=cst.parse_expression(decorator))
    return fn.with_changes(decorators=(*fn.decorators, new))


def _statements(source: str) -> list[cst.BaseStatement]:
    """Parsed statements; comment lines before the first stay with it (not lost as a module header)."""
    module = cst.parse_module(source)
    block = list(module.body)
    if block and module.header:
        block[0] = block[0].with_changes(leading_lines=(*module.header, *block[0].leading_lines))
    return block


def _append_block(fn: cst.FunctionDef, block: list) -> cst.FunctionDef:
    """``block`` at the end of ``fn``'s body, before a final ``return``."""
    body = list(fn.body.body)
    if body and isinstance(body[-1], cst.SimpleStatementLine) and isinstance(body[-1].body[0], cst.Return):
        body[-1:-1] = block
    else:
        body.extend(block)
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


def append_statements(fn: cst.FunctionDef, lines: list[str]) -> cst.FunctionDef:
    return _append_block(fn, _statements("".join(line + "\n" for line in lines)))


def append_static_marks(fn: cst.FunctionDef, attrs: list[str], torch_name: str) -> cst.FunctionDef:
    """At the end of ``fn`` (before a final ``return``): mark each ``self.<attr>`` a static address."""
    marks = "".join(f"    {torch_name}._dynamo.mark_static_address(self.{a})\n" for a in attrs)
    block = _statements(
        "# written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)\n"
        f"if not {torch_name}.compiler.is_compiling():\n" + marks)
    return _append_block(fn, block)
