"""One file as the rule fixes see it: its libcst tree, where each node starts, and its names."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from .names import ModuleNames

_EMPTY = cst.parse_module("")


def code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


@dataclass
class FileContext:
    path: str
    text: str
    module: cst.Module
    tree: ast.Module | None  # ``ast.parse`` of the same text
    names: ModuleNames

    @classmethod
    def build(cls, path: str, text: str, module: cst.Module, tree: ast.Module | None) -> "FileContext":
        ctx = cls(path, text, module, tree, ModuleNames(path, tree))
        ctx._wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        ctx._positions = ctx._wrapper.resolve(PositionProvider)
        ctx._parents = None  # resolved on first use: few fixes need it
        ctx._lines = text.splitlines()
        ctx._by_start: dict[tuple[int, int], list[cst.CSTNode]] = {}
        for node, pos in ctx._positions.items():
            ctx._by_start.setdefault((pos.start.line, pos.start.column), []).append(node)
        return ctx

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if self._parents is None:
            self._parents = self._wrapper.resolve(ParentNodeProvider)
        return self._parents.get(node)

    def names_in_function(self, fn: cst.FunctionDef) -> set[str]:
        out: set[str] = set()

        class Names(cst.CSTVisitor):
            def visit_Name(self, node: cst.Name) -> None:
                out.add(node.value)

        fn.visit(Names())
        return out

    def fresh_name(self, fn: cst.FunctionDef | None, base: str, taken: set[str]) -> str:
        """A local name not used in ``fn`` (nor in ``taken``): ``base``, ``base_2``, ..."""
        used = (self.names_in_function(fn) if fn is not None else set()) | taken
        name, i = base, 1
        while name in used:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    def holds(self, path: str) -> bool:
        """Is ``path`` (as a finding names it) this file?"""
        return os.path.realpath(path) == os.path.realpath(self.path)

    # -- positions -----------------------------------------------------------------------------
    def line_of(self, node: cst.CSTNode) -> int:
        return self._positions[node].start.line

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self._positions[node]
        return pos.start.line, pos.end.line

    def char_col(self, line: int, byte_col: int) -> int:
        """``ast`` columns count UTF-8 bytes; libcst's count characters."""
        if not 0 < line <= len(self._lines):
            return byte_col
        return len(self._lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def node_at(self, kind: type, line: int, byte_col: int) -> cst.CSTNode | None:
        """The outermost node of ``kind`` starting at (line, col) as ``ast`` reports it."""
        found = [n for n in self._by_start.get((line, self.char_col(line, byte_col)), []) if isinstance(n, kind)]
        if not found:
            return None
        return max(found, key=lambda n: (self._positions[n].end.line, self._positions[n].end.column))

    def statement_at(self, line: int) -> cst.SimpleStatementLine | cst.BaseCompoundStatement | None:
        """The innermost statement whose span holds ``line``."""
        best = None
        for node, pos in self._positions.items():
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) \
                    and pos.start.line <= line <= pos.end.line:
                if best is None or pos.start.line >= self._positions[best].start.line:
                    best = node
        return best

    def function_at(self, def_line: int) -> cst.FunctionDef | None:
        for node in self._by_line(def_line):
            if isinstance(node, cst.FunctionDef):
                return node
        return None

    def class_at(self, line: int) -> cst.ClassDef | None:
        for node in self._by_line(line):
            if isinstance(node, cst.ClassDef):
                return node
        return None

    def _by_line(self, line: int):
        for (start_line, _), nodes in self._by_start.items():
            if start_line == line:
                yield from nodes

    def enclosing(self, node: cst.CSTNode, kind: type) -> cst.CSTNode | None:
        """The innermost ``kind`` node whose span holds ``node``."""
        start = self._positions[node].start
        best = None
        for other, pos in self._positions.items():
            if isinstance(other, kind) and other is not node and (pos.start.line, pos.start.column) <= \
                    (start.line, start.column) and (pos.end.line, pos.end.column) >= \
                    (self._positions[node].end.line, self._positions[node].end.column):
                if best is None or (pos.start.line, pos.start.column) >= \
                        (self._positions[best].start.line, self._positions[best].start.column):
                    best = other
        return best
