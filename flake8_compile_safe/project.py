"""Stage 2, index the project: every module's imports, classes, functions and state attributes.

One :class:`ProjectIndex` is built per project root and per process (flake8 calls the plugin
once per file; ``--jobs`` forks workers, each of which builds it once). Module names and
imports: :mod:`.imports`; attribute kinds: :mod:`.attributes`; bases outside the project:
:mod:`.external`.
"""

from __future__ import annotations

import ast
import gc
import os
import re
from pathlib import Path

from .astwalk import walk_branches
from .external import ExternalClasses, is_torch_module_name
from .imports import ImportResolver, ModuleNamer, find_project_root
from .model import ClassInfo, FunctionInfo, ModuleInfo, recording
from .source import SourceError, parse_source, read_text
from .values import (  # noqa: F401 - re-exported: the rules and the fixer import them from here
    BUFFER, DICT, INIT_METHODS, INT, LIST, MODULE, PARAMETER, TENSOR, TENSOR_KINDS, TORCH_NON_TENSOR,
    StaticKind, StaticKinds, dotted,
)

__all__ = ["ProjectIndex", "ModuleInfo", "ClassInfo", "FunctionInfo", "find_project_root", "dotted",
           "iter_statements", "iter_python_files"]

SKIP_DIRS = {
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "__pycache__", "node_modules",
    "build", "dist", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
}
COMPILE_MENTION = re.compile(r"torch\.compile\b|\bimport\b[^\n]*\bcompile\b")
HOOK_MENTION = re.compile(r"register_forward(?:_pre)?_hook|register_module_forward(?:_pre)?_hook")


def mentions_compile(text: str) -> bool:
    """Whether ``COMPILE_MENTION`` matches ``text``, searching only the lines that hold "compile".

    Every match lies within one line that contains "compile"; searching the whole text instead
    tries the pattern at every position (1.5 s on a 50 MB tree, 0.03 s this way).
    """
    at = text.find("compile")
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        if COMPILE_MENTION.search(text, start, end):
            return True
        at = text.find("compile", end)
    return False


def mentions_hooks(text: str) -> bool:
    return "register_" in text and HOOK_MENTION.search(text) is not None


def iter_python_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if filename.endswith(".py"):
                yield Path(dirpath) / filename


def non_self_attribute_reads(tree: ast.Module | None) -> dict[str, int]:
    """``name -> line`` of the first ``x.name`` (x not ``self``) in ``ast.walk`` order."""
    found: dict[str, int] = {}
    if tree is None:
        return found
    attribute, name = ast.Attribute, ast.Name
    for node in walk_branches(tree):  # ast.walk's order without the leaves (Load, operators)
        if type(node) is attribute and not (type(node.value) is name and node.value.id == "self"):
            found.setdefault(node.attr, node.lineno)
    return found


def iter_statements(body: list[ast.stmt]):
    """Every statement in ``body`` and the blocks nested in it (not expressions, not classes)."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(stmt, name, None)
            if block and not isinstance(stmt, ast.ClassDef):
                stack.extend(reversed(block))


class ProjectIndex:
    """Everything the later stages look up: modules, classes, functions, attribute kinds."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.namer = ModuleNamer(self.root)
        self.kinds = StaticKinds(self)
        self.external = ExternalClasses()
        self.modules: dict[str, ModuleInfo] = {}
        self.by_path: dict[str, ModuleInfo] = {}
        self.packages: set[str] = set()  # dotted names of directories holding modules
        self.errors: dict[str, str] = {}  # path -> one-line problem (syntax error, encoding)
        self.globally_static_attrs: set[str] = set()
        self._module_class_cache: dict[str, bool] = {}
        self._mro_cache: dict[str, list[ClassInfo]] = {}
        self._lookup_cache: dict[str, object] = {}
        self._subclasses: dict[str, list[ClassInfo]] | None = None
        self._with_in_mro: dict[str, list[ClassInfo]] | None = None
        self._overrides_cache: dict[tuple[str, str], list[FunctionInfo]] = {}
        self._type_args: dict[str, dict[str, str]] = {}

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build(cls, root: str | Path, trees: dict[str, ast.Module] | None = None) -> "ProjectIndex":
        """Index every ``.py`` under ``root``; ``trees`` reuses trees already parsed (flake8's)."""
        index = cls(Path(root).resolve())
        trees = trees or {}
        # Millions of AST nodes, no reference cycles among them: the cyclic GC would rescan them
        # on every generation-2 pass and triple the build time on a large project.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            index._build(trees)
        finally:
            if gc_was_enabled:
                gc.enable()
        return index

    def _build(self, trees: dict[str, ast.Module]) -> None:
        for path in iter_python_files(self.root):
            key = str(path)
            try:
                text = read_text(path)  # flake8 decodes bad bytes as latin-1; Python would refuse them
                tree = trees[key] if key in trees else parse_source(text, path)
            except SourceError as exc:
                self.errors[key] = exc.problem
                continue
            module = self.add_module(path, tree)
            # Cheap filters for the whole-module expression scans (torch.compile(...) calls, hooks).
            module.mentions_compile = mentions_compile(text)
            module.mentions_hooks = mentions_hooks(text)
        self.finish()

    def add_module(self, path: Path, tree: ast.Module) -> ModuleInfo:
        name = self.namer.name_for(path)
        if name in self.modules:  # two files claim one name: keep both reachable
            name = f"{name}@{path}"
        return self.register(ModuleInfo(name, path, tree))

    def register(self, module: ModuleInfo) -> ModuleInfo:
        """Add a module (built now, or restored from the cache) under its name."""
        name, path = module.name, module.path
        self.modules[name] = module
        self.by_path[str(path)] = module
        package = name.rpartition(".")[0] if path.name != "__init__.py" else name
        while package and package not in self.packages:
            self.packages.add(package)
            package = package.rpartition(".")[0]
        return module

    def finish(self) -> None:
        resolver = self.resolver()
        for module in self.modules.values():
            self.index_names(module, resolver)
        for module in self.modules.values():
            self.index_attributes(module)

    def resolver(self) -> ImportResolver:
        return ImportResolver(self.namer, self.modules, self.packages)

    def index_names(self, module: ModuleInfo, resolver: ImportResolver) -> None:
        """Pass 1 over one module: imports, classes, functions (needs only the set of modules)."""
        self._collect_imports(module, resolver)
        self._collect_definitions(module)
        module.attribute_reads = non_self_attribute_reads(module.tree)

    def index_attributes(self, module: ModuleInfo) -> None:
        """Pass 2 over one module, once every module has had pass 1: attribute and global kinds.

        Notes which other files' ASTs it read (``module.fact_deps``) and the attributes it marks
        static project-wide (``module.static_marks``): the incremental run redoes this pass for
        a module when a file it read changed.
        """
        from .attributes import AttributeCollector

        saved, self.globally_static_attrs = self.globally_static_attrs, set()
        try:
            with recording() as read:
                self._collect_globals(module)
                collector = AttributeCollector(self)
                for klass in module.classes.values():
                    collector.collect(klass)
        finally:
            module.static_marks = frozenset(self.globally_static_attrs)
            self.globally_static_attrs = saved | module.static_marks
        module.fact_deps = frozenset(read - {module.path_str})

    def _collect_imports(self, module: ModuleInfo, resolver: ImportResolver) -> None:
        # Statements only (module level, under if/try, and function bodies): a full ast.walk over
        # every expression of a large project costs more than parsing it.
        for node in iter_statements(module.tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.imports[alias.asname] = resolver.canonical(alias.name, module)
                    else:
                        head = alias.name.partition(".")[0]
                        module.imports.setdefault(head, resolver.canonical(head, module))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = resolver.relative(module, node.level, node.module)
                else:
                    base = resolver.canonical(node.module or "", module)
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    module.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name

    def _collect_definitions(self, module: ModuleInfo) -> None:
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions[node.name] = FunctionInfo(f"{module.name}.{node.name}", node.name, node, module)
            elif isinstance(node, ast.ClassDef):
                self._add_class(module, node)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                callee = dotted(node.value.func)
                resolved = module.resolve(callee) if callee else ""
                if resolved == "logging.getLogger":
                    module.loggers.update(t.id for t in node.targets if isinstance(t, ast.Name))
                elif resolved.rsplit(".", 1)[-1] == "TypeVar" and isinstance(node.targets[0], ast.Name):
                    bound = next((dotted(k.value) for k in node.value.keywords if k.arg == "bound"), None)
                    module.typevars[node.targets[0].id] = bound
            elif isinstance(node, (ast.If, ast.Try)):
                # Definitions under `if TYPE_CHECKING:` / try-except fallbacks still count.
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        module.functions.setdefault(
                            child.name, FunctionInfo(f"{module.name}.{child.name}", child.name, child, module))
                    elif isinstance(child, ast.ClassDef) and child.name not in module.classes:
                        self._add_class(module, child)
        for node in module.tree.body:  # `Alias = pkg.Class`: a second name for a class or function
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, (ast.Name, ast.Attribute))):
                alias, target = node.targets[0].id, dotted(node.value)
                if target and alias not in module.classes and alias not in module.functions:
                    resolved = module.resolve(target)
                    if resolved != target or "." in target or target in module.classes:
                        module.imports.setdefault(alias, resolved)

    def _collect_globals(self, module: ModuleInfo) -> None:
        for node in module.tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id not in module.imports:
                        kind = self.kinds.assigned(module, node.value, {}, None)
                        if kind.kind in (LIST, DICT):
                            module.global_kinds[target.id] = kind

    def _add_class(self, module: ModuleInfo, node: ast.ClassDef) -> None:
        klass = ClassInfo(f"{module.name}.{node.name}", node.name, node, module)
        for base in node.bases:
            name = dotted(base.value if isinstance(base, ast.Subscript) else base)
            if name:
                klass.bases.append(module.resolve(name))
        for deco in node.decorator_list:
            name = dotted(deco.func if isinstance(deco, ast.Call) else deco)
            if name and module.resolve(name).split(".")[-1] == "dataclass":
                klass.is_dataclass = True
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                klass.methods[item.name] = FunctionInfo(f"{klass.qualname}.{item.name}", item.name, item, module, klass)
        module.classes[node.name] = klass

    # Kept for callers of the old API (roots, the fixer): the kinds live in values.StaticKinds.
    def annotation_kind(self, module: ModuleInfo, ann: ast.expr) -> tuple[str | None, str | None]:
        found = self.kinds.annotation(module, ann)
        return found.kind, found.type_name

    def release(self) -> None:
        """Drop the trees and break the module/class/function reference cycles, so that plain
        reference counting frees them at once (a gc.collect() over millions of AST nodes takes
        longer than building them)."""
        for module in self.modules.values():
            for klass in module.classes.values():
                klass.methods.clear()
                klass.class_constants.clear()
            module.classes.clear()
            module.functions.clear()
            module.tree = None
        self.modules.clear()
        self.by_path.clear()
        self._mro_cache.clear()
        self._lookup_cache.clear()
        self._subclasses = None
        self._with_in_mro = None
        self._overrides_cache.clear()

    # -- lookups ------------------------------------------------------------------------------
    def lookup(self, qualname: str):
        """A project class or function by qualified name, following re-exports (memoised)."""
        try:
            return self._lookup_cache[qualname]
        except KeyError:
            found = self._lookup_cache[qualname] = self._lookup(qualname)
            return found

    def _lookup(self, qualname: str, _depth: int = 0):
        if _depth > 8 or not qualname:
            return None
        module_name, _, attr = qualname.rpartition(".")
        module = self.modules.get(module_name)
        if module is None:
            # Nested: Class.method
            owner = self._lookup(module_name, _depth + 1)
            if isinstance(owner, ClassInfo):
                return owner.methods.get(attr)
            return None
        if attr in module.classes:
            return module.classes[attr]
        if attr in module.functions:
            return module.functions[attr]
        if attr in module.imports and module.imports[attr] != qualname:
            return self._lookup(module.imports[attr], _depth + 1)
        return None

    def lookup_class(self, qualname: str) -> ClassInfo | None:
        found = self.lookup(qualname)
        return found if isinstance(found, ClassInfo) else None

    def lookup_function(self, qualname: str) -> FunctionInfo | None:
        found = self.lookup(qualname)
        return found if isinstance(found, FunctionInfo) else None

    def mro(self, klass: ClassInfo) -> list[ClassInfo]:
        cached = self._mro_cache.get(klass.qualname)
        if cached is not None:
            return cached
        order, stack, seen = [], [klass], set()
        while stack:
            current = stack.pop(0)
            if current.qualname in seen:
                continue
            seen.add(current.qualname)
            order.append(current)
            stack.extend(b for b in (self.lookup_class(name) for name in current.bases) if b)
        self._mro_cache[klass.qualname] = order
        return order

    def with_in_mro(self, qualname: str) -> list[ClassInfo]:
        """Every class whose MRO holds a class named ``qualname`` (itself included), in ``classes()``
        order; built once for all names (asked per class, the scan was quadratic)."""
        if self._with_in_mro is None:
            table: dict[str, list[ClassInfo]] = {}
            for cls in self.classes():
                for name in dict.fromkeys(c.qualname for c in self.mro(cls)):
                    table.setdefault(name, []).append(cls)
            self._with_in_mro = table
        return self._with_in_mro.get(qualname, [])

    def subclasses(self, klass: ClassInfo) -> list[ClassInfo]:
        """Every project class that derives from ``klass``, directly or not."""
        if self._subclasses is None:
            direct: dict[str, list[ClassInfo]] = {}
            for cls in self.classes():
                for base in cls.bases:
                    parent = self.lookup_class(base)
                    if parent is not None and parent is not cls:
                        direct.setdefault(parent.qualname, []).append(cls)
            self._subclasses = direct
        out, stack, seen = [], list(self._subclasses.get(klass.qualname, [])), {klass.qualname}
        while stack:
            current = stack.pop()
            if current.qualname in seen:
                continue
            seen.add(current.qualname)
            out.append(current)
            stack.extend(self._subclasses.get(current.qualname, []))
        return out

    def overrides(self, klass: ClassInfo, name: str) -> list[FunctionInfo]:
        """Methods ``name`` defined by subclasses of ``klass``: where a call on a static type may land."""
        key = (klass.qualname, name)
        cached = self._overrides_cache.get(key)
        if cached is None:
            cached = self._overrides_cache[key] = [c.methods[name] for c in self.subclasses(klass)
                                                   if name in c.methods]
        return cached

    def type_args(self, klass: ClassInfo) -> dict[str, str]:
        """TypeVar (qualified) -> project class, from subscripted bases: ``class A(Base[State])``
        with ``class Base(Generic[StateT])`` maps ``StateT`` to ``State`` for ``A``."""
        cached = self._type_args.get(klass.qualname)
        if cached is not None:
            return cached
        self._type_args[klass.qualname] = out = {}
        for base in klass.node.bases:
            if not isinstance(base, ast.Subscript):
                continue
            parent = self.lookup_class(klass.module.resolve(dotted(base.value) or ""))
            args = base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]
            if parent is None:
                continue
            for param, arg in zip(self._type_params(parent), args):
                kind = self.kinds.annotation(klass.module, arg)
                if kind.classes:
                    out.setdefault(param, kind.classes[0])
            for name, value in self.type_args(parent).items():
                out.setdefault(name, value)
        return out

    def _type_params(self, klass: ClassInfo) -> list[str]:
        """The TypeVars a generic class declares (``Generic[StateT]``, ``Protocol[T]``), qualified."""
        params = []
        for base in klass.node.bases:
            if isinstance(base, ast.Subscript):
                for arg in base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]:
                    name = dotted(arg)
                    if name in klass.module.typevars:
                        params.append(f"{klass.module.name}.{name}")
        return list(dict.fromkeys(params))

    def find_method(self, klass: ClassInfo, name: str) -> FunctionInfo | None:
        for current in self.mro(klass):
            if name in current.methods:
                return current.methods[name]
        return None

    def attr(self, klass: ClassInfo, attr: str) -> StaticKind | None:
        for current in self.mro(klass):
            if attr in current.attrs:
                return current.attrs[attr]
        return None

    def attr_kind(self, klass: ClassInfo, attr: str) -> str | None:
        for current in self.mro(klass):
            found = current.attrs.get(attr)
            if found is not None and found.kind:
                return found.kind
        return None

    def attr_type(self, klass: ClassInfo, attr: str) -> ClassInfo | None:
        found = self.attr(klass, attr)
        return self.lookup_class(found.type_name) if found is not None and found.type_name else None

    def is_static_attr(self, klass: ClassInfo, attr: str) -> bool:
        return attr in self.globally_static_attrs or any(attr in c.static_attrs for c in self.mro(klass))

    def class_constant(self, klass: ClassInfo, attr: str) -> tuple[ast.expr, ClassInfo] | None:
        """A class-body constant no instance overrides (``attention_axis = AttentionAxis.TIME``)."""
        chain = self.mro(klass)
        if any(attr in c.instance_attrs for c in chain):
            return None
        for current in chain:
            if attr in current.class_constants:
                return current.class_constants[attr], current
        return None

    def is_mutated_attr(self, klass: ClassInfo, attr: str) -> bool:
        return any(attr in c.mutated_attrs for c in self.mro(klass))

    def is_flipped_flag(self, klass: ClassInfo, attr: str) -> bool:
        """An attribute assigned different literals (``True`` in ``__init__``, ``False`` later) and
        rebound outside ``__init__``: a flag whose value the compiled code may see change."""
        if not self.is_mutated_attr(klass, attr):
            return False
        for current in self.mro(klass):
            found = current.constants_assigned.get(attr)
            if found:
                return ("expr",) not in found and ("aug",) not in found and len(found) > 1
        return False

    def init_kind(self, klass: ClassInfo, attr: str) -> tuple[bool, str | None]:
        """(whether code outside compiled methods sets ``attr``, the kind it sets)."""
        for current in self.mro(klass):
            if attr in current.init_kinds:
                return True, current.init_kinds[attr]
        return False, None

    def is_nn_module(self, klass: ClassInfo) -> bool:
        cached = self._module_class_cache.get(klass.qualname)
        if cached is not None:
            return cached
        self._module_class_cache[klass.qualname] = False  # cycle guard
        result = False
        for base in klass.bases:
            if is_torch_module_name(base):
                result = True
            elif base.startswith("nn.") or base == "Module":
                result = True  # unresolved alias; the name says enough
            else:
                parent = self.lookup_class(base)
                if parent is not None:
                    result = self.is_nn_module(parent)
                elif "." in base:
                    result = self.external.is_nn_module(base)
            if result:
                break
        self._module_class_cache[klass.qualname] = result
        return result

    def classes(self):
        for module in self.modules.values():
            yield from module.classes.values()

    def functions(self):
        for module in self.modules.values():
            yield from module.functions.values()
            for klass in module.classes.values():
                yield from klass.methods.values()
