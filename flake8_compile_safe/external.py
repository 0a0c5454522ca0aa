"""Classes defined outside the project: is a base class from an installed library an ``nn.Module``?

A project class whose base lives in an installed package (``class M(PretrainedBase)``
from a model library, ``class L(LightningModule)``) is an ``nn.Module`` if that base is one. This is answered from
the installed package's *source*, never by importing it: the package's files are located by
scanning the ``sys.path`` entries (``importlib.util.find_spec`` would import parent packages),
parsed, and the base's own bases followed (through re-exports such as
``from .base import Model``) until ``torch.nn.Module`` or nothing.
Answers are cached per process. When the package is not installed where the linter runs,
:data:`WELL_KNOWN_MODULES` (``known_module_bases.txt``) answers for the common ones.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from .source import SourceError, parse_file
from .values import dotted

# nn.Module subclasses of popular libraries, for when they are not installed where flake8 runs: one
# qualified name a line in known_module_bases.txt beside this file (data, not code).
WELL_KNOWN_MODULES = frozenset(
    line.strip() for line in (Path(__file__).with_name("known_module_bases.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#"))
MAX_DEPTH = 12


def is_torch_module_name(name: str) -> bool:
    """``torch.nn.Module``, ``torch.nn.Linear``, ...: a class of ``torch.nn`` (capitalised)."""
    return name.startswith("torch.nn.") and name.rsplit(".", 1)[-1][:1].isupper()


class _ExternalModule:
    """Classes (with their bases, resolved) and imported names of one external source file."""

    def __init__(self, name: str, path: Path, tree: ast.Module):
        self.name = name
        self.is_package = path.name == "__init__.py"
        self.imports: dict[str, str] = {}
        self.classes: dict[str, list[str]] = {}
        for node in _top_level(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.partition(".")[0]] = \
                        alias.name if alias.asname else alias.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom):
                base = self._relative(node.level, node.module) if node.level else (node.module or "")
                for alias in node.names:
                    if alias.name != "*":
                        self.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = [n for n in (dotted(b.value if isinstance(b, ast.Subscript) else b)
                                                       for b in node.bases) if n]
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name_ = dotted(node.value)
                if name_:  # `Alias = pkg.Class`
                    self.imports.setdefault(node.targets[0].id, name_)

    def _relative(self, level: int, target: str | None) -> str:
        package = self.name.split(".") if self.is_package else self.name.split(".")[:-1]
        if level > 1:
            package = package[: len(package) - (level - 1)]
        base = ".".join(package)
        return f"{base}.{target}" if target and base else (target or base)

    def resolve(self, name: str) -> str:
        head, _, rest = name.partition(".")
        if head in self.imports:
            base = self.imports[head]
            resolved = f"{base}.{rest}" if rest else base
            return resolved if resolved != name else name
        if head in self.classes:
            return f"{self.name}.{name}"
        return name


def _top_level(body):
    """Module-level statements, including those under ``if``/``try`` (TYPE_CHECKING, fallbacks)."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.If, ast.Try)) or (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
            blocks = [node.body, node.orelse, getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in reversed(blocks):
                stack.extend(reversed(block))
        else:
            yield node


class ExternalClasses:
    """Answers "is this external class an nn.Module?" from installed sources, cached per process."""

    _answers: dict[str, bool] = {}
    _modules: dict[str, _ExternalModule | None] = {}
    _locations: dict[str, Path | None] = {}

    def __init__(self, search_path: list[str] | None = None):
        self.search_path = list(sys.path if search_path is None else search_path)

    def is_nn_module(self, qualname: str) -> bool:
        if is_torch_module_name(qualname):
            return True
        cached = self._answers.get(qualname)
        if cached is None:
            self._answers[qualname] = False  # cycle guard
            cached = self._answers[qualname] = self._is_module(qualname, 0) or qualname in WELL_KNOWN_MODULES
        return cached

    def _is_module(self, qualname: str, depth: int) -> bool:
        if depth > MAX_DEPTH or "." not in qualname:
            return False
        if is_torch_module_name(qualname) or qualname in WELL_KNOWN_MODULES:
            return True
        module_name, _, attr = qualname.rpartition(".")
        module = self._module(module_name)
        if module is None:
            # `pkg.sub.Class` where `pkg.sub` is a class, or a package we cannot find
            return False
        if attr in module.classes:
            for base in module.classes[attr]:
                resolved = module.resolve(base)
                if resolved == base and "." not in base:
                    continue  # a builtin (object, Generic) or a name we cannot see
                if self._answers.get(resolved) or self._is_module(resolved, depth + 1):
                    return True
            return False
        if attr in module.imports:
            target = module.imports[attr]
            return target != qualname and self._is_module(target, depth + 1)
        return False  # defined lazily (module __getattr__) or not at all: unknown

    def _module(self, name: str) -> _ExternalModule | None:
        if name in self._modules:
            return self._modules[name]
        path = self._locate(name)
        found = None
        if path is not None:
            try:
                found = _ExternalModule(name, path, parse_file(path))
            except (SourceError, RecursionError, MemoryError):
                found = None
        self._modules[name] = found
        return found

    def _locate(self, name: str) -> Path | None:
        head, _, rest = name.partition(".")
        if head in ("torch", "builtins", "typing", "abc", "collections"):
            return None
        if head not in self._locations:
            self._locations[head] = self._find_top(head)
        top = self._locations[head]
        if top is None:
            return None
        if top.suffix == ".py":
            return top if not rest else None
        target = top.joinpath(*rest.split(".")) if rest else top
        for candidate in (target.with_suffix(".py") if rest else None, target / "__init__.py"):
            if candidate is not None and candidate.is_file():
                return candidate
        return None

    def _find_top(self, head: str) -> Path | None:
        for entry in self.search_path:
            base = Path(entry or ".")
            package, single = base / head, base / f"{head}.py"
            if (package / "__init__.py").is_file() or (package.is_dir() and any(package.glob("*.py"))):
                return package
            if single.is_file():
                return single
        return None
