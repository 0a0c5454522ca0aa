"""Names in one file, resolved with the linter's resolver (``import torch as th`` works).

The fixer writes ``torch.*`` calls; in a file that imports torch under another name it writes that
name, and in a file that does not import the top-level ``torch`` module it adds ``import torch``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst

from flake8_compile_safe.imports import ImportResolver
from flake8_compile_safe.project import ModuleInfo, ProjectIndex


def _collect_imports(path: str, module: ModuleInfo) -> None:
    """The linter's import table of one file (names of other project modules stay as written)."""
    index = ProjectIndex(Path(path).parent)
    index._collect_imports(module, ImportResolver(index.namer, {}, set()))


class ModuleNames:
    def __init__(self, path: str, tree: ast.Module | None):
        self.module = ModuleInfo(Path(path).stem, Path(path), tree or ast.Module(body=[], type_ignores=[]))
        _collect_imports(path, self.module)
        top = ast.Module(body=[s for s in self.module.tree.body if isinstance(s, (ast.Import, ast.ImportFrom))],
                         type_ignores=[])
        top_level = ModuleInfo(self.module.name, self.module.path, top)
        _collect_imports(path, top_level)
        # A module-level name bound to the torch module, usable anywhere in the file.
        self.torch_alias = next((alias for alias, target in top_level.imports.items() if target == "torch"), None)

    def resolve(self, dotted: str) -> str:
        return self.module.resolve(dotted) if dotted else ""

    @property
    def torch(self) -> str:
        return self.torch_alias or "torch"

    @property
    def needs_import(self) -> bool:
        return self.torch_alias is None


def add_import_torch(module: cst.Module) -> cst.Module:
    """``import torch`` after the docstring and ``from __future__`` imports (other imports stay put)."""
    body = list(module.body)
    at = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
            small = stmt.body[0]
            is_doc = i == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
            is_future = isinstance(small, cst.ImportFrom) and isinstance(small.module, cst.Name) \
                and small.module.value == "__future__"
            if is_doc or is_future:
                at = i + 1
                continue
        break
    body.insert(at, cst.parse_statement("import torch\n"))
    return module.with_changes(body=body)
