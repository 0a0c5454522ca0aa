"""Where a project's files sit in Python's module namespace, and what their imports name.

Python finds ``import a.b`` by looking for ``a/b.py`` (or ``a/b/__init__.py``, or a plain
directory: a PEP 420 namespace package) under each ``sys.path`` entry. For a project that is
the project root (``python -m`` from it), ``<root>/src`` (src layouts), and the directory of
the script being run (scripts folders, research repos without packaging). So:

* every file gets one canonical dotted name, its path relative to the source root it lies under
  (``<root>/src`` for files there, else ``<root>``), with or without ``__init__.py`` files;
* an absolute import is resolved by trying the same search roots in turn: the root, ``src``,
  then each directory from the importing file's own up to the root; the first that holds the
  module wins. Relative imports are resolved against the importing module's package, as
  Python does. Names that match no project file (``torch``, ``typing``) stay as written.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")
SOURCE_DIRS = ("src",)
_IMPORT_HEAD = re.compile(r"^\s*(?:from\s+([A-Za-z_][\w.]*)\s+import|import\s+([A-Za-z_][\w.]*))", re.M)
_RELATIVE = re.compile(r"^\s*from\s+(\.+)", re.M)


def find_project_root(path: str | Path) -> Path:
    """Nearest ancestor holding a project marker; else the directory Python would need on sys.path.

    Without markers: the parent of the outermost regular package, or, for namespace packages,
    the parent of the outermost directory that the file's own absolute imports name
    (``pkg/model/attention.py`` importing ``pkg.model.util`` -> the parent of ``pkg/``).
    """
    start = Path(path).resolve()
    file = start if start.is_file() else None
    if file is None and start.is_dir():
        file = next(iter(sorted(start.glob("*.py"))), None)
    if not start.is_dir():
        start = start.parent
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in ROOT_MARKERS):
            return directory
    directory = start
    while (directory / "__init__.py").exists() and directory.parent != directory:
        directory = directory.parent
    if file is not None:
        named = _root_named_by_imports(file, start)
        if named is not None and directory in (named, *named.parents) and named != directory:
            return named
        if named is not None and named in directory.parents:
            return named
    return directory


def _root_named_by_imports(file: Path, start: Path) -> Path | None:
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    best = None
    ancestors = [start, *start.parents]
    deepest = max((len(m.group(1)) for m in _RELATIVE.finditer(text)), default=0)
    if 0 < deepest < len(ancestors):  # `from ..x import y`: the package is at least that deep
        best = ancestors[deepest - 1].parent if deepest - 1 < len(ancestors) else None
    for match in _IMPORT_HEAD.finditer(text):
        dotted_name = match.group(1) or match.group(2)
        parts = dotted_name.split(".")
        for directory in ancestors:
            if directory.name == parts[0] and len(parts) > 1 and (
                    (directory / Path(*parts[1:])).with_suffix(".py").exists()
                    or (directory / Path(*parts[1:])).is_dir()):
                if best is None or directory.parent in best.parents:
                    best = directory.parent
                break
    return best


def chain_name(path: Path) -> str:
    """Dotted name from the package chain (``__init__.py`` files) above ``path``."""
    parts = [] if path.stem == "__init__" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts) or path.stem


class ModuleNamer:
    """Canonical names of a project's files and the search roots its absolute imports use."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.source_roots = [self.root / d for d in SOURCE_DIRS
                             if (self.root / d).is_dir() and not (self.root / d / "__init__.py").exists()]

    def source_root_of(self, path: Path) -> Path | None:
        for source in self.source_roots:
            if source in path.parents:
                return source
        return self.root if self.root in path.parents else None

    def name_for(self, path: Path) -> str:
        base = self.source_root_of(path)
        if base is None:  # outside the project: a single file linted on its own
            return chain_name(path)
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts) or path.stem

    def prefix_of(self, directory: Path) -> str | None:
        """The dotted name of a directory (a package, regular or namespace), "" for a source root."""
        base = self.source_root_of(directory / "x.py")
        if base is None:
            return None
        rel = directory.relative_to(base)
        return ".".join(rel.parts)

    def search_prefixes(self, path: Path) -> list[str]:
        """Dotted prefixes, nearest first, under which an absolute import from ``path`` may resolve."""
        out = [""]
        base = self.source_root_of(path)
        if base is None:
            return out
        directory = path.parent
        while directory != base and base in directory.parents:
            prefix = self.prefix_of(directory)
            # Only a directory that is not a regular package can be a script's own sys.path entry.
            if prefix and not (directory / "__init__.py").exists():
                out.append(prefix)
            directory = directory.parent
        return out


class ImportResolver:
    """Rewrites dotted names written in a module into the canonical names of project modules."""

    def __init__(self, namer: ModuleNamer, modules: dict, packages: set[str]):
        self.namer = namer
        self.modules = modules  # canonical name -> ModuleInfo
        self.packages = packages  # dotted names of the project's directories holding Python files
        self.heads = {name.rpartition(".")[2] for name in (*modules, *packages)}
        self._cache: dict[tuple[str, str], str | None] = {}

    def longest_module(self, name: str) -> str | None:
        """The longest prefix of ``name`` that is a project module (or a namespace directory)."""
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def canonical(self, name: str, module) -> str:
        """``name`` as written in ``module`` -> the canonical dotted name (unchanged if not ours)."""
        head = name.partition(".")[0]
        if head not in self.heads:
            return name
        key = (name, str(module.path.parent))
        if key in self._cache:
            found = self._cache[key]
            return found if found is not None else name
        found = None
        for prefix in self.namer.search_prefixes(module.path):
            first = f"{prefix}.{head}" if prefix else head
            if first in self.modules or first in self.packages:
                found = f"{prefix}.{name}" if prefix else name
                break
        self._cache[key] = found
        return found if found is not None else name

    def relative(self, module, level: int, target: str | None) -> str:
        package = module.package.split(".") if module.package else []
        if level > 1:
            package = package[: len(package) - (level - 1)]
        base = ".".join(package)
        if target:
            return f"{base}.{target}" if base else target
        return base
