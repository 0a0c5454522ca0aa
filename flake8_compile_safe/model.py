"""What the index knows of a module, a class and a function, with their ASTs loaded on demand.

A module restored from the persistent cache (:mod:`.cache`) has no tree: its classes and
functions keep only where they are (line, column), and the first read of ``.node`` or ``.tree``
parses the file. Every such read is noted in the innermost :func:`recording` set, which is how
the incremental run learns which files a function's analysis depended on.
"""

from __future__ import annotations

import ast
import pickle
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .source import parse_file
from .values import StaticKind, dotted

_RECORDERS: list[set[str]] = []
_UNSET = object()


@contextmanager
def recording(isolated: bool = False):
    """Collect the paths of the modules whose ASTs are read inside the block.

    Reads inside count for the enclosing block too, unless ``isolated`` (a callee's summary:
    its caller depends on the summary's value, not on the files that produced it).
    """
    found: set[str] = set()
    _RECORDERS.append(found)
    try:
        yield found
    finally:
        _RECORDERS.pop()
        if _RECORDERS and not isolated:
            _RECORDERS[-1].update(found)


def note_access(path: str) -> None:
    if _RECORDERS:
        _RECORDERS[-1].add(path)


# Project-wide questions answered from the index (``("attribute read", name)``): an analysis
# depends on their answers. The call graph pushes one dict per analysis under way.
QUERY_SINKS: list[dict] = []
QUERY_ANSWERS: dict = {}  # kind -> function(index, key) answering it again (for replay)


def note_query(key: tuple, answer) -> None:
    if QUERY_SINKS:
        QUERY_SINKS[-1].setdefault(key, (None, answer))


class FunctionInfo:
    """A function or method; ``node`` is its def (parsed on first use for a cached module)."""

    __slots__ = ("qualname", "name", "_node", "module", "cls", "parent", "lineno", "col", "_decorators", "_args",
                 "_derived")

    def __init__(self, qualname: str, name: str, node, module: "ModuleInfo", cls: "ClassInfo | None" = None,
                 parent: "FunctionInfo | None" = None, lineno: int = 0, col: int = 0):
        self.qualname = qualname
        self.name = name
        self.module = module
        self.cls = cls
        self.parent = parent  # the enclosing function of a nested def (a closure)
        # No node and no position: a placeholder (a class constructed that defines no __init__).
        self._node = node if node is not None else (_UNSET if lineno else None)
        self.lineno = node.lineno if node is not None else lineno
        self.col = node.col_offset if node is not None else col
        self._decorators = _decorator_names(node) if node is not None else None
        # The signature stays in the summary: calls into a function bind its parameters, and
        # that must not cost a parse of the callee's file (it is in the interface digest).
        self._args = node.args if node is not None else None
        self._derived = None  # {key: value} computed from the def once; kept in the summary (see derived)

    def derived(self, key: str, compute):
        """``compute(node)`` for this def, memoised under ``key`` and kept in the cached summary, so
        a warm run asks it without parsing the file. Values must be plain data (ints, bools, tuples)."""
        if self._derived is None:
            self._derived = {}
        if key not in self._derived:
            node = self.node
            self._derived[key] = compute(node) if node is not None else None
        return self._derived[key]

    @property
    def decorators(self) -> tuple[str, ...]:
        """Raw dotted decorator names, kept in the summary: roots ask for them of every function."""
        if self._decorators is None:
            node = self.node
            self._decorators = _decorator_names(node) if node is not None else ()
        return self._decorators

    @property
    def node(self):
        if self._node is None:  # a placeholder with no def (a class constructed, no __init__)
            return None
        note_access(self.module.path_str)
        if self._node is _UNSET:
            self.module.load_tree()
        return self._node

    @property
    def key(self) -> tuple:
        return (self.qualname, self.lineno, self.col)

    @property
    def display(self) -> str:
        return f"{self.cls.name}.{self.name}" if self.cls else self.name

    @property
    def args(self) -> ast.arguments:
        node = self._node
        if node is not None and node is not _UNSET:
            return node.args
        if isinstance(self._args, str):  # from the cache: the signature's source, parsed once
            self._args = ast.parse(f"def _({self._args}): pass").body[0].args
        elif self._args is None:
            self._args = self.node.args
        return self._args

    def transient_args(self) -> ast.arguments:
        """The parameters without keeping a parsed signature: whole-walk checks ask them of thousands
        of functions a warm run only replays (kept, they would hold a signature's AST each)."""
        args = self._args
        if isinstance(args, str) and (self._node is None or self._node is _UNSET):
            return ast.parse(f"def _({args}): pass").body[0].args
        return self.args

    def first_positional(self) -> str | None:
        """The first positional parameter's name (see :meth:`transient_args`)."""
        args = self.transient_args()
        params = [*args.posonlyargs, *args.args]
        return params[0].arg if params else None

    @property
    def params(self) -> list[ast.arg]:
        args = self.args
        return [*args.posonlyargs, *args.args, *args.kwonlyargs]

    def decorator_names(self) -> list[str]:
        return [self.module.resolve(name) for name in self.decorators if name]

    def args_source(self) -> str | None:
        """The parameters as source (``x, n: int = 1``), unparsed once: the cached summary keeps
        them so (a pickled AST costs ten times the bytes, and more to load), and the interface
        digest compares them. None when they cannot be unparsed."""
        if isinstance(self._args, ast.arguments):
            try:
                self._args = ast.unparse(self._args)
            except (ValueError, RecursionError):
                return None
        return self._args

    def __getstate__(self):
        state = {name: getattr(self, name) for name in self.__slots__ if name != "_node"}
        state["_node"] = self._node is not None
        if isinstance(self._args, ast.arguments):
            state["_args"] = self.args_source()  # None: read from the def when needed
        return state

    def __setstate__(self, state):
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._node = _UNSET if state["_node"] else None
        if "_derived" not in state:
            self._derived = None
        self.name = sys.intern(self.name)  # "forward", "__init__": one string for thousands

    def __repr__(self) -> str:
        return f"<FunctionInfo {self.qualname}>"


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _definitions(tree: ast.Module) -> dict[tuple[int, int], ast.AST]:
    """Every def and class by (line, column); statements only (a def is never in an expression)."""
    found = {}
    stack = list(tree.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, _DEFS):
            found[(stmt.lineno, stmt.col_offset)] = stmt
        for name in _BLOCKS:
            block = getattr(stmt, name, None)
            if block:
                stack.extend(block)
    return found


_EMPTY = frozenset()
# What the attribute pass finds of a class (ClassInfo fields): kept pickled in a restored class.
CLASS_FACTS = ("attrs", "init_kinds", "static_attrs", "mutated_attrs", "instance_attrs", "constants_assigned",
               "class_constants")


def _interned_keys(table: dict) -> dict:
    """``table`` with its keys interned (attribute names recur in every module of a tree)."""
    return {sys.intern(k) if type(k) is str else k: v for k, v in table.items()} if table else table


def _decorator_names(node) -> tuple[str, ...]:
    return tuple(dotted(d.func if isinstance(d, ast.Call) else d) or "" for d in node.decorator_list)


@dataclass(eq=False)
class ClassInfo:
    qualname: str
    name: str
    _node: object
    module: "ModuleInfo"
    bases: list[str] = field(default_factory=list)  # resolved dotted names
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    is_dataclass: bool = False
    attrs: dict[str, StaticKind] = field(default_factory=dict)  # what each attribute holds (joined)
    init_kinds: dict[str, str | None] = field(default_factory=dict)  # kind set outside compiled code
    static_attrs: set[str] = field(default_factory=set)  # marked by mark_static_address
    mutated_attrs: set[str] = field(default_factory=set)  # rebound outside __init__
    instance_attrs: set[str] = field(default_factory=set)  # assigned on self anywhere
    constants_assigned: dict[str, set] = field(default_factory=dict)  # attr -> literals assigned anywhere
    class_constants: dict[str, ast.expr] = field(default_factory=dict)  # class-body `X = value`
    lineno: int = 0
    col: int = 0

    def __post_init__(self):
        if self._node is not None and self._node is not _UNSET:
            self.lineno, self.col = self._node.lineno, self._node.col_offset

    @property
    def node(self) -> ast.ClassDef:
        note_access(self.module.path_str)
        if self._node is _UNSET:
            self.module.load_tree()
        return self._node

    @property
    def attr_kinds(self) -> dict[str, str]:
        return {name: kind.kind for name, kind in self.attrs.items() if kind.kind}

    def reset_attributes(self) -> None:
        """Forget what the attribute pass found (before it runs again on a changed file)."""
        self.__dict__.pop("_facts", None)
        self.attrs, self.init_kinds, self.static_attrs, self.mutated_attrs = {}, {}, set(), set()
        self.instance_attrs, self.constants_assigned, self.class_constants = set(), {}, {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_node"] = None
        if "_facts" not in state:  # restored and never read: the stored bytes as they were
            state["_facts"] = pickle.dumps(tuple(state.pop(name) for name in CLASS_FACTS),
                                           protocol=pickle.HIGHEST_PROTOCOL)
        return state

    def __setstate__(self, state):
        # The attribute facts stay pickled until something reads them (__getattr__): a warm
        # run reads them for the few classes it analyses or re-indexes, not the thousands
        # it replays.
        self.__dict__.update(state)
        self._node = _UNSET

    def __getattr__(self, name: str):
        facts = self.__dict__.get("_facts")
        if facts is None or name not in CLASS_FACTS:
            raise AttributeError(name)
        self._unpack_facts(facts)
        return self.__dict__[name]

    def _unpack_facts(self, facts: bytes) -> None:
        from .cache import load_entry  # the allow-list unpickler; cache.py needs nothing of ours

        del self.__dict__["_facts"]
        values = dict(zip(CLASS_FACTS, load_entry(facts)))
        # Restored facts are read, never added to (a re-read class starts from reset_attributes):
        # an empty set can be the one empty frozenset, and the names shared.
        for name in ("static_attrs", "mutated_attrs", "instance_attrs"):
            if not values[name]:
                values[name] = _EMPTY
        for name in ("attrs", "init_kinds", "constants_assigned", "class_constants"):
            values[name] = _interned_keys(values[name])
        for name, value in values.items():
            if name not in self.__dict__:  # set since (reset_attributes): that wins
                self.__dict__[name] = value

    def __repr__(self) -> str:
        return f"<ClassInfo {self.qualname}>"


@dataclass(eq=False)
class ModuleInfo:
    name: str
    path: Path
    _tree: object
    imports: dict[str, str] = field(default_factory=dict)  # also module-level aliases `A = pkg.A`
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    loggers: set[str] = field(default_factory=set)  # module-level names bound to logging.getLogger()
    global_kinds: dict[str, StaticKind] = field(default_factory=dict)  # module-level `NAME = value`
    typevars: dict[str, str | None] = field(default_factory=dict)  # `T = TypeVar("T", bound=B)`: name -> B
    mentions_compile: bool = True
    mentions_hooks: bool = True
    path_str: str = ""
    fact_deps: frozenset = frozenset()  # other files whose ASTs the attribute pass read
    static_marks: frozenset = frozenset()  # attribute names this module marks static
    # Attributes read through something other than `self` (`cache.pos`): name -> first line, in
    # ast.walk order. Kept in the summary so project-wide questions need no parse.
    attribute_reads: dict = field(default_factory=dict)

    def __post_init__(self):
        self.path_str = str(self.path)

    @property
    def tree(self) -> ast.Module | None:
        note_access(self.path_str)
        if self._tree is _UNSET:
            self.load_tree()
        return self._tree

    @tree.setter
    def tree(self, value) -> None:
        self._tree = value

    @property
    def tree_loaded(self) -> bool:
        return self._tree is not _UNSET and self._tree is not None

    def load_tree(self) -> None:
        """Parse the file and hand each cached class and function its node, found by position."""
        tree = parse_file(self.path)
        self._tree = tree
        by_position = self.__dict__["_positions"] = _definitions(tree)
        for klass in self.classes.values():
            klass._node = by_position.get((klass.lineno, klass.col))
        for func in self.all_functions():
            func._node = by_position.get((func.lineno, func.col))
        for func in self._nested.values():
            func._node = by_position.get((func.lineno, func.col))

    def all_functions(self):
        yield from self.functions.values()
        for klass in self.classes.values():
            yield from klass.methods.values()

    @property
    def _nested(self) -> dict:
        nested = self.__dict__.get("_nested_functions")
        if nested is None:
            nested = self.__dict__["_nested_functions"] = {}
        return nested

    def nested_def(self, qualname: str, node, parent: FunctionInfo) -> FunctionInfo:
        """The nested def ``node`` of ``parent``, one object per def: the one a replay made, or a new one.

        Registered here so that the module's summary keeps what was derived from it.
        """
        key = (qualname, node.lineno, node.col_offset)
        found = self._nested.get(key)
        if found is None:
            found = self._nested[key] = FunctionInfo(qualname, node.name, node, self, None, parent)
        elif found._node is _UNSET:
            found._node = node
        return found

    def function_at(self, qualname: str, lineno: int, col: int, parent: FunctionInfo | None) -> FunctionInfo:
        """The function defined at (lineno, col): a top-level one, a method, or a nested def."""
        for func in self.all_functions():
            if func.lineno == lineno and func.col == col and func.qualname == qualname:
                return func
        key = (qualname, lineno, col)
        found = self._nested.get(key)
        if found is None:
            name = qualname.rpartition(".")[2]
            found = self._nested[key] = FunctionInfo(qualname, name, None, self, None, parent, lineno, col)
            kept = self.__dict__.get("_nested_facts", {}).get(key)
            if kept is not None:  # what the last run derived from its def: no parse to ask it again
                found._decorators, derived, found._args = kept
                found._derived = dict(derived) if derived else None
            positions = self.__dict__.get("_positions")
            if self._tree is not _UNSET:  # built from source this run, or already loaded
                if positions is None:
                    positions = self.__dict__["_positions"] = _definitions(self._tree)
                found._node = positions.get((lineno, col))
        return found

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("_nested_functions", "_positions")}
        state["_tree"] = None
        # Nested defs are made on demand, not indexed; the facts a whole-walk check derived from
        # them (decorators, FunctionInfo.derived) stay, like those of the module's own functions.
        kept = dict(state.get("_nested_facts", {}))
        for key, func in self._nested.items():
            if func._decorators is not None or func._derived or func._args is not None:
                # the signature as source, as for the module's own functions (a hook's parameters)
                args = func.args_source() if isinstance(func._args, ast.arguments) else func._args
                kept[key] = (func._decorators, func._derived, args)
        if kept:
            state["_nested_facts"] = kept
        return state

    def __setstate__(self, state):
        state["attribute_reads"] = _interned_keys(state["attribute_reads"])
        state["imports"] = {sys.intern(k): sys.intern(v) if type(v) is str else v
                            for k, v in _interned_keys(state["imports"]).items()}
        self.__dict__.update(state)
        self._tree = _UNSET

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
