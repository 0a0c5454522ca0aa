"""Stage 2, index the project: every module's imports, classes, functions and state attributes.

One :class:`ProjectIndex` is built per project root and per process (flake8 calls the plugin
once per file; ``--jobs`` forks workers, each of which builds it once).
"""

from __future__ import annotations

import ast
import gc
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .source import SourceError, parse_source, read_text

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")
SKIP_DIRS = {
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "__pycache__", "node_modules",
    "build", "dist", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
}

# Kinds of state an attribute can hold, as far as the rules care.
TENSOR, BUFFER, PARAMETER, MODULE, LIST, DICT, INT = (
    "tensor", "buffer", "parameter", "module", "list", "dict", "int")
TENSOR_KINDS = {TENSOR, BUFFER, PARAMETER}

TENSOR_ANNOTATIONS = {"torch.Tensor", "torch.FloatTensor", "torch.LongTensor", "torch.BoolTensor",
                      "torch.IntTensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter"}
# jaxtyping's Float[torch.Tensor, "..."] and friends.
JAXTYPING_PREFIX = "jaxtyping."
INIT_METHODS = {"__init__", "__post_init__", "__new__", "__setstate__"}
# torch calls that return Python values, not tensors.
TORCH_NON_TENSOR = {
    "torch.is_tensor", "torch.is_floating_point", "torch.numel", "torch.device", "torch.Size",
    "torch.get_default_dtype", "torch.is_grad_enabled", "torch.compiler.is_compiling",
    "torch._dynamo.is_compiling", "torch.compiler.is_dynamo_compiling", "torch.finfo", "torch.iinfo",
    "torch.no_grad", "torch.inference_mode", "torch.autocast", "torch.compile",
    "torch._dynamo.graph_break", "torch._dynamo.mark_static_address", "torch.cuda.is_available",
}


COMPILE_MENTION = re.compile(r"torch\.compile\b|\bimport\b[^\n]*\bcompile\b")


def find_project_root(path: str | Path) -> Path:
    """Nearest ancestor holding a project marker; else the parent of the outermost package."""
    start = Path(path).resolve()
    if not start.is_dir():
        start = start.parent
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in ROOT_MARKERS):
            return directory
    directory = start
    while (directory / "__init__.py").exists() and directory.parent != directory:
        directory = directory.parent
    return directory


def module_name_for(path: Path) -> str:
    """Dotted name from the package chain (``__init__.py`` files) above ``path``."""
    parts = [] if path.stem == "__init__" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts) or path.stem


def iter_python_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if filename.endswith(".py"):
                yield Path(dirpath) / filename


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


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


@dataclass(eq=False)
class FunctionInfo:
    qualname: str
    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    module: "ModuleInfo"
    cls: "ClassInfo | None" = None

    @property
    def display(self) -> str:
        return f"{self.cls.name}.{self.name}" if self.cls else self.name

    @property
    def params(self) -> list[ast.arg]:
        args = self.node.args
        return [*args.posonlyargs, *args.args, *args.kwonlyargs]

    def decorator_names(self) -> list[str]:
        names = []
        for deco in self.node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = dotted(target)
            if name:
                names.append(self.module.resolve(name))
        return names

    def __repr__(self) -> str:
        return f"<FunctionInfo {self.qualname}>"


@dataclass(eq=False)
class ClassInfo:
    qualname: str
    name: str
    node: ast.ClassDef
    module: "ModuleInfo"
    bases: list[str] = field(default_factory=list)  # resolved dotted names
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    is_dataclass: bool = False
    attr_kinds: dict[str, str] = field(default_factory=dict)
    attr_types: dict[str, str] = field(default_factory=dict)  # attr -> class qualname
    static_attrs: set[str] = field(default_factory=set)  # marked by mark_static_address
    mutated_attrs: set[str] = field(default_factory=set)  # rebound outside __init__
    instance_attrs: set[str] = field(default_factory=set)  # assigned on self anywhere
    class_constants: dict[str, ast.expr] = field(default_factory=dict)  # class-body `X = value`

    def __repr__(self) -> str:
        return f"<ClassInfo {self.qualname}>"


@dataclass(eq=False)
class ModuleInfo:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    loggers: set[str] = field(default_factory=set)  # module-level names bound to logging.getLogger()
    mentions_compile: bool = True

    @property
    def package(self) -> str:
        is_pkg = self.path.name == "__init__.py"
        return self.name if is_pkg else self.name.rpartition(".")[0]

    def resolve(self, name: str) -> str:
        """Resolve a local dotted name (``nn.Module``) to a qualified one (``torch.nn.Module``)."""
        head, _, rest = name.partition(".")
        if head in self.imports:
            base = self.imports[head]
        elif head in self.classes or head in self.functions:
            base = f"{self.name}.{head}"
        else:
            return name
        return f"{base}.{rest}" if rest else base


def _resolve_relative(module: ModuleInfo, level: int, target: str | None) -> str:
    package = module.package.split(".") if module.package else []
    if level > 1:
        package = package[: len(package) - (level - 1)]
    base = ".".join(package)
    if target:
        return f"{base}.{target}" if base else target
    return base


class ProjectIndex:
    """Everything the later stages look up: modules, classes, functions, attribute kinds."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.modules: dict[str, ModuleInfo] = {}
        self.by_path: dict[str, ModuleInfo] = {}
        self.errors: dict[str, str] = {}  # path -> one-line problem (syntax error, encoding)
        self.globally_static_attrs: set[str] = set()
        self._module_class_cache: dict[str, bool] = {}
        self._mro_cache: dict[str, list[ClassInfo]] = {}
        self._lookup_cache: dict[str, object] = {}

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
        index = self
        for path in iter_python_files(index.root):
            key = str(path)
            try:
                text = read_text(path)  # flake8 decodes bad bytes as latin-1; Python would refuse them
                tree = trees[key] if key in trees else parse_source(text, path)
            except SourceError as exc:
                index.errors[key] = exc.problem
                continue
            module = index.add_module(path, tree)
            # Cheap filter for the torch.compile(...) call scan (a full expression walk per file).
            module.mentions_compile = bool(COMPILE_MENTION.search(text))
        index.finish()

    def add_module(self, path: Path, tree: ast.Module) -> ModuleInfo:
        name = module_name_for(path)
        if name in self.modules:  # two files claim one name (scripts dirs): keep both reachable
            name = f"{name}@{path}"
        module = ModuleInfo(name=name, path=path, tree=tree)
        self.modules[name] = module
        self.by_path[str(path)] = module
        return module

    def finish(self) -> None:
        for module in self.modules.values():
            self._collect_imports(module)
        for module in self.modules.values():
            self._collect_definitions(module)
        for module in self.modules.values():
            for klass in module.classes.values():
                self._collect_attributes(klass)

    def _collect_imports(self, module: ModuleInfo) -> None:
        # Statements only (module level, under if/try, and function bodies): a full ast.walk over
        # every expression of a large project costs more than parsing it.
        for node in iter_statements(module.tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.imports[alias.asname] = alias.name
                    else:
                        head = alias.name.partition(".")[0]
                        module.imports.setdefault(head, head)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_relative(module, node.level, node.module) if node.level else (node.module or "")
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    module.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        for node in module.tree.body:  # `DecodeCache = util.DecodeCache`: a module-level alias of an import
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = dotted(node.value)
                if name and "." in name and name.split(".")[0] in module.imports:
                    module.imports.setdefault(node.targets[0].id, module.resolve(name))

    def _collect_definitions(self, module: ModuleInfo) -> None:
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions[node.name] = FunctionInfo(f"{module.name}.{node.name}", node.name, node, module)
            elif isinstance(node, ast.ClassDef):
                self._add_class(module, node)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                callee = dotted(node.value.func)
                if callee and module.resolve(callee) == "logging.getLogger":
                    module.loggers.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.If, ast.Try)):
                # Definitions under `if TYPE_CHECKING:` / try-except fallbacks still count.
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        module.functions.setdefault(
                            child.name, FunctionInfo(f"{module.name}.{child.name}", child.name, child, module))
                    elif isinstance(child, ast.ClassDef) and child.name not in module.classes:
                        self._add_class(module, child)

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

    def _collect_attributes(self, klass: ClassInfo) -> None:
        module = klass.module
        for item in klass.node.body:  # class-level annotations (dataclass fields) and assignments
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                self._note_attr(klass, item.target.id, item.annotation, item.value, {})
            elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                klass.class_constants[item.targets[0].id] = item.value
        for method in klass.methods.values():
            param_annotations = {a.arg: a.annotation for a in method.params if a.annotation is not None}
            in_init = method.name in INIT_METHODS
            for node in iter_statements(method.node.body):
                if isinstance(node, ast.Expr):
                    node = node.value  # self.register_buffer(...), mark_static_address(...)
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        for elt in (target.elts if isinstance(target, ast.Tuple) else [target]):
                            if (isinstance(elt, ast.Attribute) and isinstance(elt.value, ast.Name)
                                    and elt.value.id == "self"):
                                annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
                                value = None if isinstance(node, ast.AugAssign) else node.value
                                self._note_attr(klass, elt.attr, annotation, value, param_annotations)
                                klass.instance_attrs.add(elt.attr)
                                if not in_init:
                                    klass.mutated_attrs.add(elt.attr)
                elif isinstance(node, ast.Call):
                    callee = dotted(node.func)
                    resolved = module.resolve(callee) if callee else ""
                    if callee and callee.endswith("register_buffer") and node.args:
                        if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                            klass.attr_kinds[node.args[0].value] = BUFFER
                    elif resolved.endswith("mark_static_address") and node.args:
                        marked = node.args[0]
                        if isinstance(marked, ast.Attribute):
                            if isinstance(marked.value, ast.Name) and marked.value.id == "self":
                                klass.static_attrs.add(marked.attr)
                            else:
                                self.globally_static_attrs.add(marked.attr)

    def _note_attr(self, klass, attr, annotation, value, param_annotations) -> None:
        module = klass.module
        kind, type_name = None, None
        if annotation is not None:
            kind, type_name = self.annotation_kind(module, annotation)
        if value is not None:
            v_kind, v_type = self.value_kind(module, value, param_annotations)
            kind, type_name = v_kind or kind, v_type or type_name
        if kind and klass.attr_kinds.get(attr) not in (BUFFER, PARAMETER):
            klass.attr_kinds[attr] = kind
        if type_name:
            klass.attr_types.setdefault(attr, type_name)

    # -- kinds of annotations and values ------------------------------------------------------
    def annotation_kind(self, module: ModuleInfo, ann: ast.expr) -> tuple[str | None, str | None]:
        """(kind, project class) an annotation denotes; unwraps strings, Optional, Union, ``X | None``."""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return None, None
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            for side in (ann.left, ann.right):
                result = self.annotation_kind(module, side)
                if result != (None, None):
                    return result
            return None, None
        if isinstance(ann, ast.Subscript):
            head = module.resolve(dotted(ann.value) or "")
            short = head.split(".")[-1]
            if head.startswith(JAXTYPING_PREFIX) or (short in {"Float", "Int", "Bool", "Num", "Shaped", "Integer"}
                                                     and "jaxtyping" in module.imports.get(short, "")):
                return TENSOR, None
            inner = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            if short in {"Optional", "Union", "Annotated", "Final", "ClassVar"}:
                for part in inner[:1] if short == "Annotated" else inner:
                    result = self.annotation_kind(module, part)
                    if result != (None, None):
                        return result
                return None, None
            if short in {"List", "list", "Sequence", "MutableSequence", "Deque", "deque"}:
                return LIST, None
            if short in {"Dict", "dict", "Mapping", "MutableMapping", "DefaultDict"}:
                return DICT, None
            return None, None
        name = dotted(ann)
        if not name:
            return None, None
        resolved = module.resolve(name)
        if resolved in TENSOR_ANNOTATIONS or resolved == "Tensor":
            return TENSOR, None
        if resolved in {"int"}:
            return INT, None
        if resolved in {"list"}:
            return LIST, None
        if resolved in {"dict"}:
            return DICT, None
        klass = self.lookup_class(resolved)
        if klass:
            return (MODULE if self.is_nn_module(klass) else None), klass.qualname
        return None, None

    def value_kind(self, module: ModuleInfo, value: ast.expr, param_annotations: dict) -> tuple[str | None, str | None]:
        if isinstance(value, (ast.List, ast.ListComp)):
            return LIST, None
        if isinstance(value, (ast.Dict, ast.DictComp)):
            return DICT, None
        if isinstance(value, ast.Constant) and type(value.value) is int:
            return INT, None
        if isinstance(value, ast.Name) and value.id in param_annotations:
            return self.annotation_kind(module, param_annotations[value.id])
        if isinstance(value, ast.Call):
            callee = dotted(value.func)
            if not callee:
                return None, None
            resolved = module.resolve(callee)
            if resolved in {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}:
                return PARAMETER, None
            if resolved in {"list"}:
                return LIST, None
            if resolved in {"dict", "collections.defaultdict", "collections.OrderedDict"}:
                return DICT, None
            if resolved.startswith("torch.nn.") and resolved.split(".")[-1][:1].isupper():
                return MODULE, None
            is_function = resolved.split(".")[-1][:1].islower()
            if resolved.startswith("torch.") and resolved not in TORCH_NON_TENSOR and is_function:
                return TENSOR, None
            klass = self.lookup_class(resolved)
            if klass:
                return (MODULE if self.is_nn_module(klass) else None), klass.qualname
            if isinstance(value.func, ast.Attribute) and value.func.attr in {"clone", "to", "detach", "contiguous"}:
                inner_kind, _ = self.value_kind(module, value.func.value, param_annotations)
                if inner_kind in TENSOR_KINDS:
                    return TENSOR, None
        return None, None

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

    def find_method(self, klass: ClassInfo, name: str) -> FunctionInfo | None:
        for current in self.mro(klass):
            if name in current.methods:
                return current.methods[name]
        return None

    def attr_kind(self, klass: ClassInfo, attr: str) -> str | None:
        for current in self.mro(klass):
            if attr in current.attr_kinds:
                return current.attr_kinds[attr]
        return None

    def attr_type(self, klass: ClassInfo, attr: str) -> ClassInfo | None:
        for current in self.mro(klass):
            if attr in current.attr_types:
                return self.lookup_class(current.attr_types[attr])
        return None

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

    def is_nn_module(self, klass: ClassInfo) -> bool:
        cached = self._module_class_cache.get(klass.qualname)
        if cached is not None:
            return cached
        self._module_class_cache[klass.qualname] = False  # cycle guard
        result = False
        for base in klass.bases:
            if base.startswith("torch.nn.") and base.split(".")[-1][:1].isupper():
                result = True
            elif base.startswith("nn.") or base == "Module":
                result = True  # unresolved alias; the name says enough
            else:
                parent = self.lookup_class(base)
                result = bool(parent and self.is_nn_module(parent))
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
