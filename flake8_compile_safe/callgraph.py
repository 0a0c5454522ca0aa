"""Stage 4, follow calls: walk every function a compiled root reaches, tracking what values are.

The walk is a breadth-first search from the roots, so the chain kept for a function is a
shortest one. Each function is analysed in a *context*: the class ``self`` is and what its
arguments are (a project class, a tensor, a host number read from a tensor, mutable int state).
That is how ``forward(kv_cache: Optional["KVCache"])`` -> ``positional_embedding(..., kv_cache)``
-> ``kv_cache.append(...)`` is followed into another file. Expression values:
:mod:`.evaluate`; call edges: :mod:`.dispatch`; value kinds: :mod:`.values`.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field, replace

from .astwalk import BRANCH_FIELDS
from .dispatch import SELF_BINDING, CallResolver, CallTarget
from .evaluate import Evaluator
from .model import QUERY_SINKS, recording
from .project import FunctionInfo, ProjectIndex
from .roots import Root, is_disabled
from .values import (  # noqa: F401 - HOST, INTSTATE, TENSOR_VALUE re-exported for older imports
    DICT, HOST, INIT_METHODS, INTSTATE, LIST, NOTHING, TENSOR_KINDS, TENSOR_VALUE, Val, class_val, dotted, join,
    value_only,
)

IS_COMPILING = {"torch.compiler.is_compiling", "torch._dynamo.is_compiling",
                "torch.compiler.is_dynamo_compiling", "torch._utils.is_compiling"}
MAX_CONTEXTS_PER_FUNCTION = 16


@dataclass(frozen=True, eq=False)
class Context:
    func: FunctionInfo
    self_cls: object  # ClassInfo | None
    bindings: tuple[tuple[str, Val], ...] = ()

    @property
    def key(self):
        return (*self.func.key, self.self_cls.qualname if self.self_cls else "",
                tuple((name, val.key()) for name, val in self.bindings))

    def display(self) -> str:
        if self.self_cls is not None and self.func.cls is not None:
            return f"{self.self_cls.name}.{self.func.name}"
        return self.func.display


def none_tested(test: ast.expr) -> str | None:
    """``x`` when the test is ``x is None``: the body runs only when ``x`` holds None."""
    if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is) and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None):
        return test.left.id
    return None


def is_compiling_test(node: ast.expr, module) -> bool:
    if isinstance(node, ast.Call):
        name = dotted(node.func)
        return bool(name) and (module.resolve(name) in IS_COMPILING or name.endswith("is_compiling"))
    return False


def compiled_branches(stmt: ast.If, module) -> tuple[bool, bool]:
    """Which branches of an ``if`` run under torch.compile: (body, orelse)."""
    test = stmt.test
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and is_compiling_test(test.operand, module):
        return False, True
    if is_compiling_test(test, module):
        return True, False
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for value in test.values:
            negated = isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)
            if negated and is_compiling_test(value.operand, module):
                return False, True
    return True, True


def own_exprs(stmt: ast.stmt) -> list[ast.AST]:
    """The expressions a statement evaluates itself, not those of the statements nested in it."""
    if isinstance(stmt, (ast.If, ast.While)):
        return [stmt.test]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.target, stmt.iter]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [part for item in stmt.items for part in (item.context_expr, item.optional_vars) if part]
    if isinstance(stmt, (ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    if hasattr(ast, "TryStar") and isinstance(stmt, ast.TryStar):
        return []
    if isinstance(stmt, ast.Match):
        return [stmt.subject]
    return [stmt]


_SKIP_NODES = (ast.Lambda, ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)


def walk_expr(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node``, staying out of lambdas (their bodies run only if called).

    Depth first, children pushed in field order and popped from the end; only the fields that
    hold nodes other than contexts and operators are read (:mod:`.astwalk`'s tables):
    ``ast.walk`` dominated the profile on large projects.
    """
    out = []
    stack = [node]
    get = BRANCH_FIELDS.get
    lam = ast.Lambda
    while stack:
        current = stack.pop()
        out.append(current)
        fields = get(type(current))
        if fields is None:
            _push_generic(current, stack)
            continue
        for name, is_list in fields:
            child = getattr(current, name, None)
            if child is None:
                continue
            if is_list:
                stack.extend([item for item in child if item is not None and type(item) is not lam])
            elif type(child) is not lam:
                stack.append(child)
    return out


def _push_generic(current: ast.AST, stack: list) -> None:
    """A node type the tables do not know: read every field."""
    for name in current._fields:
        child = getattr(current, name, None)
        if isinstance(child, ast.AST):
            if not isinstance(child, _SKIP_NODES):
                stack.append(child)
        elif isinstance(child, list):
            for item in child:
                if isinstance(item, ast.AST) and not isinstance(item, _SKIP_NODES):
                    stack.append(item)


class StatementNodes:
    """The nodes a statement evaluates itself, bucketed by type, computed once per statement."""

    __slots__ = ("stmt", "by_type", "_joined")

    def __init__(self, stmt: ast.stmt):
        self.stmt = stmt  # keeps id(stmt) valid while cached
        self.by_type: dict[type, list[ast.AST]] = {}
        self._joined: dict[tuple[type, ...], list[ast.AST]] = {}  # several types asked together
        for expr in own_exprs(stmt):
            for node in walk_expr(expr):
                self.by_type.setdefault(type(node), []).append(node)

    def of(self, *types: type) -> list[ast.AST]:
        """The nodes of ``types``, type by type (callers read the lists, never change them)."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        found = self._joined.get(types)
        if found is None:  # asked for every statement in every context: join once
            found = self._joined[types] = [n for t in types for n in self.by_type.get(t, [])]
        return found


def local_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """Names a function binds itself (parameters, assignments, loop targets, imports, defs)."""
    args = node.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    declared = set()
    stack = list(node.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.Global, ast.Nonlocal)):
            declared.update(stmt.names)
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in stmt.names)
        targets = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            targets = [stmt.target]
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            targets = [stmt.target]
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
        if isinstance(stmt, ast.ExceptHandler) and stmt.name:
            names.add(stmt.name)
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(stmt, name, None)
            if block:
                stack.extend(block)
    return frozenset(names - declared)


class FunctionAnalyzer(Evaluator, CallResolver):
    """One pass over one function in one context: tracks values, finds calls, feeds the rules."""

    def __init__(self, engine: "CallGraph", ctx: Context, on_stmt=None, record_calls: bool = True):
        self.engine = engine
        self.record_calls = record_calls  # a summary needs only what the function returns
        self.index: ProjectIndex = engine.index
        self.ctx = ctx
        self.func = ctx.func
        self.module = ctx.func.module
        self.on_stmt = on_stmt
        self.env: dict[str, Val] = {}
        self.returns: Val | None = None
        self.calls: list[tuple[ast.AST, CallTarget]] = []
        self._call_cache: dict[int, list[CallTarget]] = {}
        self._kinds: dict[int, Val] = {}
        self._init_params()

    # -- setup ---------------------------------------------------------------------------------
    def _init_params(self) -> None:
        bound = dict(self.ctx.bindings)
        params = self.func.params
        self._parameters = frozenset(p.arg for p in params)
        for i, param in enumerate(params):
            if i == 0 and self.func.cls is not None and not self._is_static_method() and param.arg in ("self", "cls"):
                klass = self.ctx.self_cls or self.func.cls
                via = bound.get(SELF_BINDING) if param.arg == "self" else None  # reached through an nn.Module
                self.env[param.arg] = Val(cls=klass.qualname, origin=via.origin if via is not None else None)
                continue
            val = NOTHING
            if param.annotation is not None:
                val = self.static_val(self.index.kinds.annotation(self.module, param.annotation))
            if param.arg in bound:
                passed = bound[param.arg]
                val = join(passed, val)
                if passed.fresh:  # the annotation names a type, not another object: a copy made by the caller stays one
                    val = replace(val, fresh=True)
            self.env[param.arg] = val

    @staticmethod
    def static_val(kind) -> Val:
        """The flow value of an index-time kind (an annotation)."""
        elems = class_val(kind.elems, kind.elems_hier) if kind.elems else None
        if kind.kind in TENSOR_KINDS:
            return Val(TENSOR_VALUE, boolean=kind.boolean)
        if kind.kind in (LIST, DICT):
            return Val(kind.kind, elems=elems)
        if kind.classes:
            val = class_val(kind.classes, kind.hier)
            return Val(cls=val.cls, alts=val.alts, hier=val.hier, elems=elems)
        return NOTHING

    def _is_static_method(self) -> bool:
        return "staticmethod" in self.func.decorator_names()

    def nested_function(self, name: str) -> FunctionInfo | None:
        """A ``def name`` directly inside this function (a closure called where it is defined)."""
        return self.engine.nested_function(self.func, name)

    def local_names(self) -> frozenset[str]:
        return self.engine.local_names(self.func)

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> "FunctionAnalyzer":
        self._walk(self.func.node.body, nested=False)
        return self

    def _walk(self, stmts: list[ast.stmt], nested: bool) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue  # nested definitions run only when called
            self._kinds = {}  # the previous statement may have rebound names
            self._bind_comprehensions(stmt)
            if self.record_calls:
                self._record_calls(stmt)
            if self.on_stmt is not None:
                self.on_stmt(stmt, self)
            self._bind(stmt, nested)
            if isinstance(stmt, ast.If):
                body, orelse = compiled_branches(stmt, self.module)
                truth = self.static_truth(stmt.test)
                body, orelse = body and truth is not False, orelse and truth is not True
                if body:
                    self._walk_narrowed(stmt, none_tested(stmt.test))
                if orelse:
                    self._walk(stmt.orelse, True)
            elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
                self._walk(stmt.body, True)
                self._walk(stmt.orelse, True)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                self._walk(stmt.body, nested)
            elif isinstance(stmt, ast.Try) or (hasattr(ast, "TryStar") and isinstance(stmt, ast.TryStar)):
                self._walk(stmt.body, True)
                for handler in stmt.handlers:
                    self._walk(handler.body, True)
                self._walk(stmt.orelse, True)
                self._walk(stmt.finalbody, nested)
            elif isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    self._walk(case.body, True)

    def _walk_narrowed(self, stmt: ast.If, name: str | None) -> None:
        """Walk an ``if`` body; under ``if x is None:`` the old value of ``x`` is not there.

        ``x = getattr(cfg, "xs", None)`` then ``if x is None: x = []; x.append(...)``: inside the
        body ``x`` is what the body assigns (a fresh list), not the attribute; after the ``if``
        it is either.
        """
        before = self.env.get(name) if name else None
        if before is not None:
            self.env[name] = NOTHING
        self._walk(stmt.body, True)
        if before is not None:
            self.env[name] = self._either(name, before, self.env.get(name, NOTHING))

    def _bind_comprehensions(self, stmt: ast.stmt) -> None:
        """Bind comprehension targets (``for layer in self.layers`` inside ``[...]``) before use."""
        comprehensions = self.nodes(stmt).of(ast.comprehension)
        for comp in reversed(comprehensions):  # walk_expr pops from the end: outer generators last
            self._assign(comp.target, self._iterated(self.kind_of(comp.iter)), False)
        if comprehensions:
            self._kinds = {}

    # -- branches decided by class constants ----------------------------------------------------
    def static_truth(self, test: ast.expr) -> bool | None:
        """True/False when a test depends only on class constants of ``self`` (or literals)."""
        if isinstance(test, ast.BoolOp):
            values = [self.static_truth(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return False if False in values else (True if all(v is True for v in values) else None)
            return True if True in values else (False if all(v is False for v in values) else None)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self.static_truth(test.operand)
            return None if inner is None else not inner
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
            left, right = self._constant(test.left), self._constant(test.comparators[0])
            if left is None or right is None:
                return None
            return (left == right) if isinstance(test.ops[0], ast.Eq) else (left != right)
        return None

    def _constant(self, node: ast.expr, module=None, depth: int = 0):
        module = module or self.module
        if depth > 4:
            return None
        if isinstance(node, ast.Constant):
            return ("const", node.value)
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
                and self.ctx.self_cls is not None):
            found = self.index.class_constant(self.ctx.self_cls, node.attr)
            if found is None:
                return None
            value, owner = found
            return self._constant(value, owner.module, depth + 1)
        name = dotted(node)
        if name and "." in name and name.split(".")[0] not in self.env:
            resolved = module.resolve(name)
            owner = self.index.lookup_class(resolved.rpartition(".")[0])
            if owner is not None:  # Enum.MEMBER of a project class
                return ("name", resolved)
        return None

    def _bind(self, stmt: ast.stmt, nested: bool) -> None:
        if isinstance(stmt, ast.Assign):
            val = self.kind_of(stmt.value)
            for target in stmt.targets:
                self._assign(target, val, nested)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            val = self.kind_of(stmt.value)
            if not (val.value or val.classes) and isinstance(stmt.target, ast.Name):
                val = join(val, self.static_val(self.index.kinds.annotation(self.module, stmt.annotation)))
            self._assign(stmt.target, val, nested)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            old = self.env.get(stmt.target.id, NOTHING)
            self.env[stmt.target.id] = join(value_only(old), value_only(self.kind_of(stmt.value)))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._assign(stmt.target, self._iterated(self.kind_of(stmt.iter)), True)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, NOTHING, nested)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            val = self.kind_of(stmt.value)
            self.returns = val if self.returns is None else join(self.returns, val)

    def _assign(self, target: ast.expr, val: Val, nested: bool) -> None:
        if isinstance(target, ast.Name):
            old = self.env.get(target.id)
            self.env[target.id] = self._either(target.id, old, val) if nested and old is not None else val
        elif isinstance(target, (ast.Tuple, ast.List)):
            for i, elt in enumerate(target.elts):
                if val.items is not None and i < len(val.items):
                    self._assign(elt, val.items[i], nested)
                else:
                    self._assign(elt, value_only(val), nested)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, NOTHING, nested)

    def _either(self, name: str, before: Val, after: Val) -> Val:
        """What ``name`` holds after a branch that may have rebound it: for a parameter, made by this
        call only if both values are (the caller's object may still be there); for a local, the join."""
        if name in self._parameters:
            return either(before, after)
        return join(before, after)

    def nodes(self, stmt: ast.stmt) -> StatementNodes:
        return self.engine.statement_nodes(stmt)

    def _record_calls(self, stmt: ast.stmt) -> None:
        nodes = self.nodes(stmt)
        for node in nodes.of(ast.Call, ast.Subscript):
            if isinstance(node, ast.Call) or isinstance(node.ctx, ast.Load):
                for target in self.resolve_call(node):
                    self.calls.append((node, target))


@dataclass
class Reached:
    """A function a compiled root reaches, in one context, with the chain that reaches it."""

    ctx: Context
    root: Root
    chain: tuple[str, ...]


@dataclass
class Skipped:
    """A function the analysis gave up on: reported (TCS902), never silently dropped."""

    path: str
    line: int
    function: str
    error: str


@dataclass
class CallGraph:
    index: ProjectIndex
    _summaries: dict = field(default_factory=dict)
    memo: object = None  # an incremental run's ReachMemo: summaries and functions of the last run
    # One dict per analysis under way: the callee summaries it used, {key: (context, value)}. An
    # incremental run replays a function when its files are unchanged and these values still are.
    _uses: list = field(default_factory=list)
    _in_progress: set = field(default_factory=set)
    _statement_nodes: dict = field(default_factory=dict)
    _nested: dict = field(default_factory=dict)
    _locals: dict = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def statement_nodes(self, stmt: ast.stmt) -> StatementNodes:
        cached = self._statement_nodes.get(id(stmt))
        if cached is None:
            cached = self._statement_nodes[id(stmt)] = StatementNodes(stmt)
        return cached

    def nested_function(self, func: FunctionInfo, name: str) -> FunctionInfo | None:
        key = id(func.node)
        table = self._nested.get(key)
        if table is None:
            table = self._nested[key] = {}
            for stmt in _shallow_statements(func.node.body):
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    table.setdefault(stmt.name, func.module.nested_def(f"{func.qualname}.<locals>.{stmt.name}",
                                                                       stmt, func))
        return table.get(name)

    def local_names(self, func: FunctionInfo) -> frozenset[str]:
        key = id(func.node)
        found = self._locals.get(key)
        if found is None:
            found = self._locals[key] = local_names(func.node)
        return found

    def context_for(self, target: CallTarget) -> Context | None:
        if target.func._node is None:  # a constructor with no __init__ (no need to parse)
            return None
        return Context(target.func, target.self_cls, target.bindings)

    def _push_uses(self) -> dict:
        uses: dict = {}
        self._uses.append(uses)
        QUERY_SINKS.append(uses)  # project-wide queries land beside the summaries used
        return uses

    def _pop_uses(self) -> dict:
        QUERY_SINKS.pop()
        return self._uses.pop()

    def summary(self, target: CallTarget) -> Val:
        """What a call returns: analyse the callee in the caller's context (memoised)."""
        ctx = self.context_for(target)
        if ctx is None or is_disabled(ctx.func):
            return NOTHING
        return self.summary_of(ctx)

    def summary_of(self, ctx: Context) -> Val:
        key = ctx.key
        if key in self._summaries:
            result = self._summaries[key]
        elif key in self._in_progress:
            result = NOTHING
        else:
            result = self._summarise(ctx, key)
        if self._uses:
            self._uses[-1].setdefault(key, (ctx, result))
        return result

    def _summarise(self, ctx: Context, key) -> Val:
        if self.memo is not None:
            stored = self.memo.summary(ctx, self)
            if stored is not None:
                self._summaries[key] = stored
                return stored
        with recording(isolated=True) as read:  # its caller depends on the value, not on this file
            returns = ctx.func.derived("returns_value", returns_value)
        if not returns:
            result = NOTHING  # what every walk of it would find: no `return <value>` to join
            self._summaries[key] = result
            if self.memo is not None:
                self.memo.store_summary(ctx, result, read | {ctx.func.module.path_str}, {})  # its own body decides
            return result
        self._in_progress.add(key)
        self._push_uses()
        try:
            with recording(isolated=True) as read:
                result = FunctionAnalyzer(self, ctx, record_calls=False).run().returns or NOTHING
        except RecursionError:
            result = NOTHING
        finally:
            self._in_progress.discard(key)
            uses = self._pop_uses()
        self._summaries[key] = result
        if self.memo is not None:
            self.memo.store_summary(ctx, result, read, uses)
        return result

    def reach(self, roots: list[Root], on_function=None, on_hits=None, memo=None) -> list[Reached]:
        """BFS from the roots; ``on_function(reached, stmt, analyzer)`` sees each statement.

        With ``on_hits``, what ``on_function`` returns for the statements of one function (its
        rule hits) is handed over once the function is done, with the qualified names of every
        function it calls and where, as ``on_hits(reached, hits, calls)`` (``calls``: (callee,
        line, column) triples). With a
        ``memo`` (:class:`.incremental.ReachMemo`), a function whose earlier analysis read only
        files that did not change is replayed from its record instead of analysed again; the
        order of the walk, and so every chain and every widening, is the same as a fresh run's.
        """
        self.memo = memo
        seen: set = set()
        per_function: dict[str, int] = {}
        reached: list[Reached] = []
        queue: deque[Reached] = deque()
        for root in roots:
            ctx = Context(root.func, root.self_cls, ())
            queue.append(Reached(ctx, root, (root.display,)))
        while queue:
            item = queue.popleft()
            ctx = item.ctx
            if ctx.key in seen:
                continue
            count = per_function.get(ctx.func.qualname, 0)
            if count >= MAX_CONTEXTS_PER_FUNCTION and ctx.bindings:
                ctx = Context(ctx.func, ctx.self_cls, ())  # widen instead of exploding
                item = Reached(ctx, item.root, item.chain)
                if ctx.key in seen:
                    continue
            seen.add(ctx.key)
            per_function[ctx.func.qualname] = count + 1
            reached.append(item)
            replayed = memo.replay(ctx, self) if memo is not None else None
            if replayed is not None:
                hits, calls, skipped, successors = replayed
            else:
                self._push_uses()
                try:
                    with recording(isolated=True) as read:
                        hits, calls, skipped, successors = self._analyse(item, on_function)
                finally:
                    uses = self._pop_uses()
                if memo is not None:
                    memo.store(ctx, hits, calls, skipped, successors, read, uses)
            if on_hits is not None:
                on_hits(item, hits, calls)
            if skipped is not None:
                self.skipped.append(skipped)
                continue
            for callee, step in successors:
                queue.append(Reached(callee, item.root, item.chain + (step,)))
        return reached

    def _analyse(self, item: Reached, on_function):
        """(rule hits, names called, Skipped or None, [(callee context, chain step)]) of one function."""
        ctx = item.ctx
        hits: list = []
        analyzer = FunctionAnalyzer(self, ctx)
        if on_function is not None:
            def on_stmt(stmt, an, _item=item):
                found = on_function(_item, stmt, an)
                if found:
                    hits.extend(found)
            analyzer.on_stmt = on_stmt
        try:
            analyzer.run()
        except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            # One pathological function (an expression nested thousands deep, or a bug of ours)
            # must not take the whole lint run down: skip it, and report it (TCS902).
            return hits, _called(analyzer), Skipped(str(ctx.func.module.path), ctx.func.lineno, ctx.display(),
                                                    f"{type(exc).__name__}: {str(exc)[:120]}"), []
        successors = []
        for _node, target in analyzer.calls:
            callee = self.context_for(target)
            if callee is None or is_disabled(callee.func):
                continue
            if callee.func.name in INIT_METHODS and target.constructs is None:
                continue  # super().__init__() inside an init that is itself reached: still init
            same_object = (callee.self_cls is not None and ctx.self_cls is not None
                           and callee.self_cls.qualname == ctx.self_cls.qualname and callee.func.cls is not None)
            successors.append((callee, callee.func.name if same_object else callee.display()))
        return hits, _called(analyzer), None, successors


def either(before: Val, after: Val) -> Val:
    """A name that holds ``before`` or, where a branch ran, ``after``: their join, made by this call
    only if both are (``if cache is None: cache = Cache()`` on an unknown argument may still be the
    caller's cache, whose writes are writes into an input)."""
    joined = join(before, after)
    if joined.fresh and not before.fresh:
        joined = replace(joined, fresh=False)
    return joined


def _called(analyzer: FunctionAnalyzer) -> tuple[tuple[str, int, int], ...]:
    """(callee, line, column of the call) of each call followed: whole-walk rules that follow a value
    through a call (TCS016) need to know which call site runs which function."""
    return tuple(dict.fromkeys((target.func.qualname, getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
                               for node, target in analyzer.calls))


def returns_value(node) -> bool:
    """Whether a def has a ``return <value>`` of its own (not one of a nested def's)."""
    return any(isinstance(stmt, ast.Return) and stmt.value is not None for stmt in _shallow_statements(node.body))


def _shallow_statements(body):
    """Statements of a function body and its nested blocks, not inside nested defs or classes."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(stmt, name, None)
            if block:
                stack.extend(reversed(block))
