"""Stage 4, follow calls: walk every function a compiled root reaches, tracking what values are.

The walk is a breadth-first search from the roots, so the chain kept for a function is a
shortest one. Each function is analysed in a *context*: the class ``self`` is and what its
arguments are (a project class, a tensor, a host number read from a tensor, mutable int state).
That is how ``forward(kv_cache: Optional["KVCache"])`` -> ``positional_embedding(..., kv_cache)``
-> ``kv_cache.append(...)`` is followed into another file.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field

from .project import (
    DICT, INIT_METHODS, INT, LIST, TENSOR, TENSOR_KINDS, TORCH_NON_TENSOR,
    ClassInfo, FunctionInfo, ProjectIndex, dotted,
)
from .roots import Root, is_disabled

# What a value is, as far as the rules care. Later in the tuple wins a join.
HOST = "host"  # a Python number read out of a tensor (.item(), int(t)): data-dependent
INTSTATE = "intstate"  # a Python int attribute that the code mutates: one graph per value
TENSOR_VALUE = TENSOR
PRIORITY = {None: 0, LIST: 1, DICT: 1, INTSTATE: 2, HOST: 3, TENSOR_VALUE: 4}

SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad", "layout", "is_sparse"}
TENSOR_ATTRS = {"T", "mT", "H", "mH", "data", "real", "imag", "grad", "values", "indices"}
STATIC_TENSOR_METHODS = {"size", "dim", "numel", "nelement", "element_size", "stride", "is_contiguous",
                         "get_device", "is_floating_point", "is_complex", "type", "data_ptr"}
HOST_METHODS = {"item", "tolist", "numpy"}
# Methods that only tensors (and arrays) have: their result is a tensor even when the receiver's
# type is unknown (an unannotated `x` in `forward(self, x)`).
TENSORISH_METHODS = {
    "any", "all", "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "norm", "abs", "float",
    "long", "half", "bfloat16", "cuda", "clone", "detach", "contiguous", "view", "reshape", "squeeze",
    "unsqueeze", "transpose", "permute", "matmul", "softmax", "log_softmax", "exp", "log", "sqrt", "sigmoid",
    "masked_fill", "expand", "flatten", "unbind", "chunk", "split", "cumsum", "prod", "std", "var", "eq", "ne",
    "gt", "lt", "ge", "le", "isnan", "isinf", "nonzero", "count_nonzero", "type_as", "new_zeros", "new_ones",
}
IS_COMPILING = {"torch.compiler.is_compiling", "torch._dynamo.is_compiling",
                "torch.compiler.is_dynamo_compiling", "torch._utils.is_compiling"}
MAX_CONTEXTS_PER_FUNCTION = 16


@dataclass(frozen=True)
class Val:
    value: str | None = None  # tensor / host / intstate / list / dict / None
    cls: str | None = None  # qualified name of a project class
    origin: tuple[str, str] | None = None  # (class qualname, attribute) when it is object state
    items: tuple["Val", ...] | None = None  # per-element values of a tuple

    @property
    def is_data_dependent(self) -> bool:
        return self.value in (TENSOR_VALUE, HOST, INTSTATE)

    def key(self):
        return (self.value, self.cls, tuple(i.key() for i in self.items) if self.items else None)


NOTHING = Val()


def join(a: Val, b: Val) -> Val:
    if a.items is not None and b.items is not None and len(a.items) == len(b.items):
        items = tuple(join(x, y) for x, y in zip(a.items, b.items))
    else:
        items = a.items or b.items
    value = a.value if PRIORITY[a.value] >= PRIORITY[b.value] else b.value
    return Val(value, a.cls or b.cls, a.origin or b.origin, items)


def value_only(val: Val) -> Val:
    return Val(val.value) if val.value else NOTHING


@dataclass(frozen=True, eq=False)
class Context:
    func: FunctionInfo
    self_cls: ClassInfo | None
    bindings: tuple[tuple[str, Val], ...] = ()

    @property
    def key(self):
        return (self.func.qualname, self.self_cls.qualname if self.self_cls else "",
                tuple((name, val.key()) for name, val in self.bindings))

    def display(self) -> str:
        if self.self_cls is not None and self.func.cls is not None:
            return f"{self.self_cls.name}.{self.func.name}"
        return self.func.display


@dataclass(frozen=True)
class CallTarget:
    func: FunctionInfo
    self_cls: ClassInfo | None
    bindings: tuple[tuple[str, Val], ...]
    constructs: str | None = None  # class qualname when the call is a constructor


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

    Hand-rolled over ``_fields``: ``ast.walk`` dominates the profile on large projects.
    """
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        for name in current._fields:
            child = getattr(current, name, None)
            if isinstance(child, ast.AST):
                if not isinstance(child, _SKIP_NODES):
                    stack.append(child)
            elif isinstance(child, list):
                for item in child:
                    if isinstance(item, ast.AST) and not isinstance(item, _SKIP_NODES):
                        stack.append(item)
    return out


class StatementNodes:
    """The nodes a statement evaluates itself, bucketed by type, computed once per statement."""

    __slots__ = ("stmt", "by_type")

    def __init__(self, stmt: ast.stmt):
        self.stmt = stmt  # keeps id(stmt) valid while cached
        self.by_type: dict[type, list[ast.AST]] = {}
        for expr in own_exprs(stmt):
            for node in walk_expr(expr):
                self.by_type.setdefault(type(node), []).append(node)

    def of(self, *types: type) -> list[ast.AST]:
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        return [n for t in types for n in self.by_type.get(t, [])]


class FunctionAnalyzer:
    """One pass over one function in one context: tracks values, finds calls, feeds the rules."""

    def __init__(self, engine: "CallGraph", ctx: Context, on_stmt=None):
        self.engine = engine
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
        for i, param in enumerate(params):
            if i == 0 and self.func.cls is not None and not self._is_static_method() and param.arg in ("self", "cls"):
                klass = self.ctx.self_cls or self.func.cls
                self.env[param.arg] = Val(cls=klass.qualname)
                continue
            val = NOTHING
            if param.annotation is not None:
                kind, qual = self.index.annotation_kind(self.module, param.annotation)
                val = Val(TENSOR_VALUE if kind in TENSOR_KINDS else (kind if kind in (LIST, DICT) else None), qual)
            if param.arg in bound:
                val = join(bound[param.arg], val)
            self.env[param.arg] = val

    def _is_static_method(self) -> bool:
        return "staticmethod" in self.func.decorator_names()

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> "FunctionAnalyzer":
        self._walk(self.func.node.body, nested=False)
        return self

    def _walk(self, stmts: list[ast.stmt], nested: bool) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue  # nested definitions run only when called; not followed
            self._kinds = {}  # the previous statement may have rebound names
            self._record_calls(stmt)
            if self.on_stmt is not None:
                self.on_stmt(stmt, self)
            self._bind(stmt, nested)
            if isinstance(stmt, ast.If):
                body, orelse = compiled_branches(stmt, self.module)
                truth = self.static_truth(stmt.test)
                body, orelse = body and truth is not False, orelse and truth is not True
                if body:
                    self._walk(stmt.body, True)
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
            self._assign(stmt.target, self.kind_of(stmt.value), nested)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            old = self.env.get(stmt.target.id, NOTHING)
            self.env[stmt.target.id] = join(value_only(old), value_only(self.kind_of(stmt.value)))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            it = self.kind_of(stmt.iter)
            self._assign(stmt.target, Val(TENSOR_VALUE) if it.value == TENSOR_VALUE else NOTHING, True)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            val = self.kind_of(stmt.value)
            self.returns = val if self.returns is None else join(self.returns, val)

    def _assign(self, target: ast.expr, val: Val, nested: bool) -> None:
        if isinstance(target, ast.Name):
            old = self.env.get(target.id)
            self.env[target.id] = join(old, val) if nested and old is not None else val
        elif isinstance(target, (ast.Tuple, ast.List)):
            for i, elt in enumerate(target.elts):
                if val.items is not None and i < len(val.items):
                    self._assign(elt, val.items[i], nested)
                else:
                    self._assign(elt, value_only(val), nested)
        elif isinstance(target, ast.Starred):
            self._assign(target.value, NOTHING, nested)

    def nodes(self, stmt: ast.stmt) -> StatementNodes:
        return self.engine.statement_nodes(stmt)

    def _record_calls(self, stmt: ast.stmt) -> None:
        nodes = self.nodes(stmt)
        for node in nodes.of(ast.Call, ast.Subscript):
            if isinstance(node, ast.Call) or isinstance(node.ctx, ast.Load):
                for target in self.resolve_call(node):
                    self.calls.append((node, target))

    # -- values --------------------------------------------------------------------------------
    def class_of(self, val: Val) -> ClassInfo | None:
        return self.index.lookup_class(val.cls) if val.cls else None

    def attr_val(self, owner: Val, attr: str) -> Val:
        klass = self.class_of(owner)
        if klass is None:
            if owner.value == TENSOR_VALUE:
                return Val(TENSOR_VALUE) if attr in TENSOR_ATTRS else NOTHING
            return NOTHING
        kind = self.index.attr_kind(klass, attr)
        attr_cls = self.index.attr_type(klass, attr)
        origin = (klass.qualname, attr)
        if kind in TENSOR_KINDS:
            return Val(TENSOR_VALUE, origin=origin)
        if kind in (LIST, DICT):
            return Val(kind, attr_cls.qualname if attr_cls else None, origin)
        if kind == INT and self.index.is_mutated_attr(klass, attr):
            return Val(INTSTATE, origin=origin)
        if attr_cls is not None:
            return Val(cls=attr_cls.qualname, origin=origin)
        return Val(origin=origin)

    def kind_of(self, node: ast.expr | None) -> Val:
        """What ``node`` evaluates to here; memoised until the next statement rebinds names."""
        if node is None:
            return NOTHING
        cached = self._kinds.get(id(node))
        if cached is None:
            cached = self._kinds[id(node)] = self._kind_of(node)
        return cached

    def _kind_of(self, node: ast.expr) -> Val:
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            return NOTHING
        if isinstance(node, ast.Attribute):
            if node.attr in SHAPE_ATTRS:
                return NOTHING
            return self.attr_val(self.kind_of(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            base = self.kind_of(node.value)
            if base.value == TENSOR_VALUE:
                return Val(TENSOR_VALUE, origin=base.origin)
            if base.items is not None and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                if -len(base.items) <= node.slice.value < len(base.items):
                    return base.items[node.slice.value]
            targets = self.resolve_call(node)
            return self._returns_of(targets)
        if isinstance(node, ast.Call):
            return self._call_val(node)
        if isinstance(node, ast.Compare):
            if all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
                return NOTHING
            val = NOTHING
            for part in (node.left, *node.comparators):
                val = join(val, value_only(self.kind_of(part)))
            return Val(val.value) if val.value in (TENSOR_VALUE, HOST, INTSTATE) else NOTHING
        if isinstance(node, (ast.BinOp, ast.BoolOp)):
            parts = [node.left, node.right] if isinstance(node, ast.BinOp) else node.values
            val = NOTHING
            for part in parts:
                part_val = self.kind_of(part)
                val = join(val, value_only(part_val) if isinstance(node, ast.BinOp) else part_val)
            return val
        if isinstance(node, ast.UnaryOp):
            return value_only(self.kind_of(node.operand))
        if isinstance(node, ast.IfExp):
            return join(self.kind_of(node.body), self.kind_of(node.orelse))
        if isinstance(node, ast.Tuple):
            return Val(items=tuple(self.kind_of(e) for e in node.elts))
        if isinstance(node, ast.List):
            return Val(LIST)
        if isinstance(node, ast.Dict):
            return Val(DICT)
        if isinstance(node, ast.Starred):
            return self.kind_of(node.value)
        if isinstance(node, ast.NamedExpr):
            val = self.kind_of(node.value)
            self.env[node.target.id] = val
            return val
        return NOTHING

    def _returns_of(self, targets: list[CallTarget]) -> Val:
        val = NOTHING
        for target in targets:
            if target.constructs:
                val = join(val, Val(cls=target.constructs))
            else:
                val = join(val, self.engine.summary(target))
        return val

    def _call_val(self, call: ast.Call) -> Val:
        func = call.func
        name = dotted(func)
        resolved = self.module.resolve(name) if name else ""
        if isinstance(func, ast.Attribute):
            method = func.attr
            recv = self.kind_of(func.value)
            if method in HOST_METHODS and recv.value not in (LIST, DICT) and not recv.cls:
                return Val(HOST)
            if method in STATIC_TENSOR_METHODS and recv.value == TENSOR_VALUE:
                return NOTHING
            if recv.value == TENSOR_VALUE:
                return Val(TENSOR_VALUE)
            if method in TENSORISH_METHODS and recv.value is None and not recv.cls and not self.resolve_call(call):
                return Val(TENSOR_VALUE)
        if resolved in ("int", "float", "bool", "complex"):
            arg = value_only(self.kind_of(call.args[0])) if call.args else NOTHING
            return Val(HOST) if arg.value in (TENSOR_VALUE, HOST) else arg
        if resolved in ("max", "min", "abs", "round", "sum"):
            val = NOTHING
            for arg in call.args:
                val = join(val, value_only(self.kind_of(arg)))
            return Val(HOST) if val.value == TENSOR_VALUE and resolved != "sum" else val
        if resolved in ("len", "isinstance", "hasattr", "getattr", "callable", "type", "id", "str", "repr"):
            return NOTHING
        if resolved.startswith("torch."):
            return NOTHING if resolved in TORCH_NON_TENSOR else Val(TENSOR_VALUE)
        if resolved.startswith("einops."):
            return Val(TENSOR_VALUE)
        targets = self.resolve_call(call)
        if targets:
            return self._returns_of(targets)
        return NOTHING

    # -- calls -------------------------------------------------------------------------------
    def resolve_call(self, node: ast.AST) -> list[CallTarget]:
        cached = self._call_cache.get(id(node))
        if cached is not None:
            return cached
        self._call_cache[id(node)] = []  # recursion guard
        targets = self._resolve(node)
        self._call_cache[id(node)] = targets
        return targets

    def _resolve(self, node: ast.AST) -> list[CallTarget]:
        index = self.index
        if isinstance(node, ast.Subscript):  # obj[i] -> __getitem__
            owner = self.class_of(self.kind_of(node.value))
            method = index.find_method(owner, "__getitem__") if owner else None
            return [self._target(method, owner, [node.slice], [], bound=True)] if method else []
        call: ast.Call = node
        func = call.func
        if isinstance(func, ast.Attribute):
            recv_node = func.value
            if (isinstance(recv_node, ast.Call) and isinstance(recv_node.func, ast.Name)
                    and recv_node.func.id == "super" and self.func.cls is not None):
                klass = self.ctx.self_cls or self.func.cls
                mro = index.mro(klass)
                after = [c for i, c in enumerate(mro) if i > [m.qualname for m in mro].index(self.func.cls.qualname)] \
                    if self.func.cls.qualname in [m.qualname for m in mro] else []
                for parent in after:
                    if func.attr in parent.methods:
                        return [self._target(parent.methods[func.attr], klass, call.args, call.keywords, bound=True)]
                return []
            recv = self.kind_of(recv_node)
            owner = self.class_of(recv)
            if owner is not None:
                method = index.find_method(owner, func.attr)
                if method is not None:
                    if "staticmethod" in method.decorator_names():
                        return [self._target(method, None, call.args, call.keywords, bound=False)]
                    return [self._target(method, owner, call.args, call.keywords, bound=True)]
                sub = index.attr_type(owner, func.attr)  # self.sub(...) -> Sub.forward
                call_method = (index.find_method(sub, "forward") or index.find_method(sub, "__call__")) if sub else None
                if call_method is not None:
                    return [self._target(call_method, sub, call.args, call.keywords, bound=True)]
                return []
            name = dotted(func)
            if name:
                found = index.lookup(self.module.resolve(name))
                if isinstance(found, FunctionInfo):
                    bound = False
                    return [self._target(found, found.cls, call.args, call.keywords, bound=bound)]
                if isinstance(found, ClassInfo):
                    return self._constructor(found, call)
            return []
        if isinstance(func, ast.Name):
            local = self.env.get(func.id)
            if local is not None and local.cls:  # calling a module object -> forward
                klass = self.class_of(local)
                method = index.find_method(klass, "forward") or index.find_method(klass, "__call__")
                return [self._target(method, klass, call.args, call.keywords, bound=True)] if method else []
            found = index.lookup(self.module.resolve(func.id))
            if isinstance(found, FunctionInfo):
                return [self._target(found, None, call.args, call.keywords, bound=False)]
            if isinstance(found, ClassInfo):
                return self._constructor(found, call)
        return []

    def _constructor(self, klass: ClassInfo, call: ast.Call) -> list[CallTarget]:
        targets = []
        for name in ("__init__", "__post_init__"):
            method = self.index.find_method(klass, name)
            if method is not None:
                args, keywords = (call.args, call.keywords) if name == "__init__" else ([], [])
                target = self._target(method, klass, args, keywords, bound=True)
                targets.append(CallTarget(target.func, target.self_cls, target.bindings, klass.qualname))
        if not targets:
            targets.append(CallTarget(FunctionInfo("", "", None, klass.module), klass, (), klass.qualname))
        return targets

    def _target(self, func: FunctionInfo, self_cls, args, keywords, bound: bool) -> CallTarget:
        params = [*func.node.args.posonlyargs, *func.node.args.args]
        if bound and func.cls is not None and params:
            params = params[1:]
        bindings = {}
        for param, arg in zip(params, args):
            if isinstance(arg, ast.Starred):
                break
            bindings[param.arg] = self.kind_of(arg)
        names = {p.arg for p in func.params}
        for keyword in keywords:
            if keyword.arg in names:
                bindings[keyword.arg] = self.kind_of(keyword.value)
        kept = tuple(sorted(((k, Val(v.value, v.cls, v.origin, v.items)) for k, v in bindings.items()
                             if v.value or v.cls), key=lambda kv: kv[0]))
        return CallTarget(func, self_cls, kept)


@dataclass
class Reached:
    """A function a compiled root reaches, in one context, with the chain that reaches it."""

    ctx: Context
    root: Root
    chain: tuple[str, ...]


@dataclass
class CallGraph:
    index: ProjectIndex
    _summaries: dict = field(default_factory=dict)
    _in_progress: set = field(default_factory=set)
    _statement_nodes: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)  # functions the analysis could not handle

    def statement_nodes(self, stmt: ast.stmt) -> StatementNodes:
        cached = self._statement_nodes.get(id(stmt))
        if cached is None:
            cached = self._statement_nodes[id(stmt)] = StatementNodes(stmt)
        return cached

    def context_for(self, target: CallTarget) -> Context | None:
        if target.func.node is None:
            return None
        return Context(target.func, target.self_cls, target.bindings)

    def summary(self, target: CallTarget) -> Val:
        """What a call returns: analyse the callee in the caller's context (memoised)."""
        ctx = self.context_for(target)
        if ctx is None or is_disabled(ctx.func):
            return NOTHING
        key = ctx.key
        if key in self._summaries:
            return self._summaries[key]
        if key in self._in_progress:
            return NOTHING
        self._in_progress.add(key)
        try:
            result = FunctionAnalyzer(self, ctx).run().returns or NOTHING
        except RecursionError:
            result = NOTHING
        finally:
            self._in_progress.discard(key)
        self._summaries[key] = result
        return result

    def reach(self, roots: list[Root], on_function=None) -> list[Reached]:
        """BFS from the roots; ``on_function(reached, analyzer)`` sees each (function, context)."""
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
            analyzer = FunctionAnalyzer(self, ctx)
            if on_function is not None:
                analyzer.on_stmt = lambda stmt, an, _item=item: on_function(_item, stmt, an)
            try:
                analyzer.run()
            except (RecursionError, ValueError, TypeError, AttributeError, KeyError) as exc:
                # One pathological function (say, an expression nested thousands deep) must not
                # take the whole lint run down: skip it, and say so in the report.
                self.skipped.append(f"{ctx.func.module.path}:{ctx.func.node.lineno}: {type(exc).__name__}")
                continue
            for _node, target in analyzer.calls:
                callee = self.context_for(target)
                if callee is None or is_disabled(callee.func):
                    continue
                if callee.func.name in INIT_METHODS and target.constructs is None:
                    continue  # super().__init__() inside an init that is itself reached: still init
                same_object = (callee.self_cls is not None and ctx.self_cls is not None
                               and callee.self_cls.qualname == ctx.self_cls.qualname and callee.func.cls is not None)
                step = callee.func.name if same_object else callee.display()
                queue.append(Reached(callee, item.root, item.chain + (step,)))
        return reached
