"""Build each fixable rule's payload (:mod:`.fixdata`) from what the analysis knows at the finding.

The rules call these when they report a hit: ``data={..., "fix": slice_access(...)}``. ``ast`` only.
"""

from __future__ import annotations

import ast
import weakref

from .astwalk import child_nodes
from .proofs import (
    MAX_LEN_NAMES, NO, attribute_uses, bindings, init_methods, int_proof, integer_dtype_proof, is_self_attr,
    owner_class, prover, related_classes, scope_nodes, self_assignment, slice_length, src, tensor_proof,
)
from .model import note_access, recording
from .fixdata import GraphBreakCall, GrowingCat, HostValue, IntCounter, SliceAccess, StateWrite, proven, unproven
from .project import ClassInfo
from .values import HOST, INIT_METHODS, MODULE, MODULE_CONTAINERS, dotted

ALLOCATOR_PREFIXES = ("__init__", "__post_init__", "allocate", "reset", "setup", "init", "build", "create")


# ---------------------------------------------------------------------------------------------
# TCS003


def _parts(sub: ast.Subscript) -> list[ast.AST]:
    return list(sub.slice.elts) if isinstance(sub.slice, ast.Tuple) else [sub.slice]


def slice_access(sub: ast.Subscript, stmt: ast.stmt, ctx, bound_kind: str) -> SliceAccess:
    parts = _parts(sub)
    lead = []
    for part in parts:
        if isinstance(part, ast.Slice):
            break
        lead.append(part)
    bounded = [p for p in parts if isinstance(p, ast.Slice) and (p.lower is not None or p.upper is not None)]
    full_before = 0
    for part in parts[len(lead):]:
        if isinstance(part, ast.Slice) and part.lower is None and part.upper is None and part.step is None:
            full_before += 1
        else:
            break
    store = isinstance(sub.ctx, ast.Store) and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
        and stmt.targets[0] is sub
    lead_proofs = [int_proof(p, ctx) for p in lead]
    lead_ints = next((p for p in lead_proofs if not p.ok), proven("no scalar index before the slice") if not lead
                     else proven("the scalar indices before the slice are Python ints"))
    length, length_why = "", "no bounded slice"
    host_var = ""
    if len(bounded) == 1:
        sl = bounded[0]
        if sl.step is not None:
            length_why = "a slice with a step"
        elif sl.upper is None:
            length_why = "the slice runs to the end of the buffer: its length is not known on the host"
        else:
            length, length_why = slice_length(sl.lower, sl.upper, stmt, ctx)
        for bound in (sl.lower, sl.upper):
            if isinstance(bound, ast.Name) and ctx.value(bound).value == HOST:
                host_var = bound.id
                break
    elif len(bounded) > 1:
        length_why = "more than one bounded slice"
    if not host_var:
        host_var = next((p.id for p in parts if isinstance(p, ast.Name) and ctx.value(p).value == HOST), "")
    if store:
        value = stmt.value
        if isinstance(value, ast.Constant) and isinstance(value.value, (int, float, bool)):
            value_tensor = proven("a number (written with index_fill_)")
        else:
            value_tensor = tensor_proof(value, ctx)
    else:
        value_tensor = proven("a read")
    return SliceAccess(store=store, receiver=tensor_proof(sub.value, ctx), lead_ints=lead_ints,
                       dim=full_before, length=length, length_why=length_why, value_tensor=value_tensor,
                       bound_kind=bound_kind, host_var=host_var)


# ---------------------------------------------------------------------------------------------
# TCS002


def _read_tensor(call: ast.Call) -> ast.AST | None:
    """``t`` in ``t.item()`` / ``int(t)``."""
    if isinstance(call.func, ast.Attribute) and call.func.attr == "item" and not call.args:
        return call.func.value
    if isinstance(call.func, ast.Name) and call.func.id in ("int", "float") and len(call.args) == 1:
        inner = call.args[0]
        if isinstance(inner, ast.Call):
            return _read_tensor(inner)
        return inner
    return None


def host_value(call: ast.Call, stmt: ast.stmt, ctx) -> HostValue | None:
    tensor = _read_tensor(call)
    if tensor is None:
        return None
    var = ""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        whole = stmt.value
        outer = whole if whole is call else (whole if isinstance(whole, ast.Call) and isinstance(whole.func, ast.Name)
                                             and whole.func.id == "int" and whole.args and whole.args[0] is call
                                             else None)
        if outer is not None:
            var = stmt.targets[0].id
    scalar_int = integer_dtype_proof(tensor, ctx)
    uses: list[int] = []
    index_only = unproven("the value is not bound to a local by itself (`name = t.item()`)")
    if var:
        scope = bindings(ctx.func.node)
        if scope.single_statement(var) is not stmt:
            index_only = unproven(f"`{var}` is bound more than once")
        else:
            index_only, uses = _index_only_uses(var, ctx)
    return HostValue(var=var, tensor=src(tensor), receiver=tensor_proof(tensor, ctx), scalar_int=scalar_int,
                     uses=tuple(uses), index_only=index_only)


def _parents(func: ast.AST) -> dict[int, ast.AST]:
    parents: dict[int, ast.AST] = {}
    for node in [func, *scope_nodes(func)]:
        for child in child_nodes(node):
            parents[id(child)] = node
    return parents


def _index_only_uses(var: str, ctx):
    parents = _parents(ctx.func.node)
    lines: list[int] = []
    for node in scope_nodes(ctx.func.node):
        if not (isinstance(node, ast.Name) and node.id == var and isinstance(node.ctx, ast.Load)):
            continue
        lines.append(node.lineno)
        current, parent = node, parents.get(id(node))
        while isinstance(parent, ast.BinOp) and isinstance(parent.op, (ast.Add, ast.Sub)):
            other = parent.right if parent.left is current else parent.left
            if not int_proof(other, ctx).ok:
                break
            current, parent = parent, parents.get(id(parent))
        if isinstance(parent, ast.Slice) and parent.step is not current:
            current, parent = parent, parents.get(id(parent))
        if isinstance(parent, ast.Tuple):
            current, parent = parent, parents.get(id(parent))
        if not (isinstance(parent, ast.Subscript) and parent.slice is current or (
                isinstance(parent, ast.Subscript) and isinstance(parent.slice, ast.Tuple))):
            return unproven(f"`{var}` is used as a Python number at line {node.lineno}"), lines
        receiver = tensor_proof(parent.value, ctx)
        if not receiver.ok:
            return unproven(f"`{var}` indexes `{src(parent.value, 40)}` at line {node.lineno}, not a proven tensor "
                            f"({receiver.why})"), lines
    if not lines:
        return unproven(f"`{var}` is never read"), lines
    return proven(f"`{var}` is only used to index tensors"), sorted(set(lines))


# ---------------------------------------------------------------------------------------------
# TCS001


def _allocation(klass: ClassInfo, attr: str, index) -> tuple[ClassInfo, str, int] | None:
    """(class, method, method line) where ``self.<attr>`` is allocated by a torch call, initialisers first."""
    found = []
    for cls in related_classes(index, klass):
        for method in cls.methods.values():
            for node in scope_nodes(method.node):
                value = self_assignment(node, attr)
                if value is NO or value is None or not isinstance(value, ast.Call):
                    continue
                name = dotted(value.func)
                if name and cls.module.resolve(name).startswith("torch.") or (
                        isinstance(node, ast.Expr)):  # register_buffer(...): a buffer already
                    rank = 0 if method.name in INIT_METHODS else (1 if method.name.startswith(ALLOCATOR_PREFIXES)
                                                                  else 2)
                    found.append((rank, method.node.lineno, cls, method.name))
    if not found:
        return None
    rank, line, cls, name = min(found, key=lambda f: (f[0], f[1]))
    return (cls, name, line) if rank < 2 else None


def state_write(stmt: ast.stmt, klass: ClassInfo | None, attr: str | None, ctx) -> StateWrite | None:
    if klass is None or not attr:
        return None
    tensor = prover(ctx.index).attr(klass, attr)
    where = _allocation(klass, attr, ctx.index)
    owner, allocator, alloc_line = (where[0], where[1], where[2]) if where else (klass, "", 0)
    augmented = ""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Attribute) and stmt.target.attr == attr:
        augmented = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/="}.get(type(stmt.op), "")
    field = klass.is_dataclass and any(
        isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id == attr
        for item in klass.node.body)
    base_post_init = any("__post_init__" in c.methods for c in ctx.index.mro(klass)[1:])
    return StateWrite(owner=owner_class(owner, ctx.index), attr=attr, tensor=tensor, allocator=allocator,
                      alloc_line=alloc_line, augmented=augmented, dataclass_field=field and not where,
                      base_post_init=base_post_init)


# ---------------------------------------------------------------------------------------------
# Python-int counters


def int_counter(klass: ClassInfo | None, attr: str | None, ctx) -> IntCounter | None:
    """A counter ``self.<attr> = 0`` advanced with ``+=`` and used only as a tensor index."""
    if klass is None or not attr:
        return None
    init = None
    for cls, method in init_methods(klass, ctx.index):
        for node in scope_nodes(method.node):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and is_self_attr(node.targets[0], attr) \
                    and isinstance(node.value, ast.Constant) and type(node.value.value) is int:
                init = (cls, method, node)
                break
        if init:
            break
    if init is None:
        return None
    owner, method, init_stmt = init
    uses = _counter_uses(klass, attr, init_stmt, ctx)
    device_attr = ""
    for node in method.node.body:
        if node is init_stmt:
            break
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and is_self_attr(node.targets[0]):
            name = node.targets[0].attr
            if prover(ctx.index).attr(owner, name).ok:
                device_attr = device_attr or name
    class_lines = tuple(sorted({c.node.lineno for c in related_classes(ctx.index, klass)
                                if c.module.path == owner.module.path}))
    return IntCounter(owner=owner_class(owner, ctx.index), attr=attr, init_method=method.name,
                      init_line=init_stmt.lineno, init_value=src(init_stmt.value), uses=uses, device_attr=device_attr,
                      class_lines=class_lines)


def counter_of_bound(bound: ast.AST, ctx) -> IntCounter | None:
    """The counter payload for an index or bound that reads ``obj.<attr>``, a mutable Python int."""
    if not isinstance(bound, ast.Attribute):
        return None
    return int_counter(ctx.class_of(ctx.value(bound.value)), bound.attr, ctx)


def _counter_uses(klass: ClassInfo, attr: str, init_stmt: ast.stmt, ctx):
    """Every ``self.<attr>`` in the related classes is an init, a reset, an advance or a tensor index,
    all in the owner's file."""
    outside = [f"{p}:{line}" for p, line in attribute_uses(ctx.index).non_self.get(attr, [])]
    if outside:
        return unproven(f"`.{attr}` is also read through another object (at {outside[0]})")
    home = klass.module.path
    for cls in related_classes(ctx.index, klass):
        for method in cls.methods.values():
            parents = _parents(method.node)
            for node in scope_nodes(method.node):
                if not is_self_attr(node, attr):
                    continue
                if cls.module.path != home:
                    return unproven(f"`self.{attr}` is used in another file ({cls.module.path}:{node.lineno})")
                why = _counter_use(node, parents, cls, method, ctx)
                if why:
                    return unproven(f"`self.{attr}` {why} ({cls.name}.{method.name}, line {node.lineno})")
    return proven(f"`self.{attr}` is only set to int literals, advanced by ints and used as a tensor index")


def _counter_use(node, parents, cls, method, ctx) -> str:
    """'' when this occurrence of ``self.<attr>`` is one the counter fix rewrites; else why not."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Assign) and node in parent.targets:
        if isinstance(parent.value, ast.Constant) and type(parent.value.value) is int and len(parent.targets) == 1:
            return ""
        return "is assigned a value that is not an int literal"
    if isinstance(parent, ast.AugAssign) and parent.target is node:
        if isinstance(parent.op, (ast.Add, ast.Sub)):
            return ""
        return "is updated with an operator other than += or -="
    subscript = None
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        subscript = parent
    elif isinstance(parent, ast.Tuple) and parent.elts and parent.elts[0] is node:
        grand = parents.get(id(parent))
        if isinstance(grand, ast.Subscript) and grand.slice is parent and all(
                isinstance(e, ast.Slice) and e.lower is None and e.upper is None and e.step is None
                for e in parent.elts[1:]):
            subscript = grand
    if subscript is None:
        return "is used as a Python number, not only as the first index of a tensor subscript"
    receiver = prover(ctx.index).expr(subscript.value, cls.module, method.node, cls, None)
    if not receiver.ok:
        return f"indexes `{src(subscript.value, 40)}`, not a proven tensor ({receiver.why})"
    return ""


# ---------------------------------------------------------------------------------------------
# Growing caches


def growing_cat(target: ast.Attribute, value: ast.AST, klass: ClassInfo | None, ctx) -> GrowingCat | None:
    """``self.x = torch.cat([self.x, v], dim=d)``."""
    if klass is None or not isinstance(value, ast.Call):
        return None
    name = dotted(value.func)
    if not name or ctx.module.resolve(name) not in ("torch.cat", "torch.concat", "torch.concatenate"):
        return None
    if not value.args or not isinstance(value.args[0], (ast.List, ast.Tuple)) or len(value.args[0].elts) != 2:
        return None
    first, appended = value.args[0].elts
    if ast.unparse(first) != ast.unparse(target):
        return None
    dim_node = value.args[1] if len(value.args) > 1 else next((k.value for k in value.keywords if k.arg == "dim"),
                                                              ast.Constant(0))
    if not (isinstance(dim_node, ast.Constant) and type(dim_node.value) is int) and not (
            isinstance(dim_node, ast.UnaryOp) and isinstance(dim_node.operand, ast.Constant)):
        return None
    dim = int(ast.literal_eval(dim_node))
    max_len, why, owner, init = "", "no maximum length found in the initialiser", klass, None
    for cls, method in init_methods(klass, ctx.index):
        owner, init = cls, method
        found = _max_len_in(method.node)
        if found:
            max_len, why = found
            break
    allocated = init is not None and any(
        isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and is_self_attr(stmt.targets[0], target.attr)
        and prover(ctx.index).expr(stmt.value, owner.module, init.node, owner, None).ok for stmt in init.node.body)
    return GrowingCat(owner=owner_class(owner, ctx.index), attr=target.attr, dim=dim, appended=src(appended),
                      max_len=max_len, max_len_why=why, init_method=init.name if init else "",
                      init_line=init.node.lineno if init else 0, allocated_in_init=allocated)


def _max_len_in(func: ast.AST) -> tuple[str, str] | None:
    params = [a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]]
    for name in MAX_LEN_NAMES:
        if name in params:
            return name, f"the initialiser's `{name}` argument"
    for node in scope_nodes(func):
        if isinstance(node, ast.Attribute) and node.attr in MAX_LEN_NAMES and isinstance(node.value, ast.Name) \
                and node.value.id in params:
            return f"{node.value.id}.{node.attr}", f"the initialiser's `{node.value.id}.{node.attr}`"
    return None


# ---------------------------------------------------------------------------------------------
# Whole functions


def runs_modules(ctx) -> bool:
    """Does the function of ``ctx`` (a RuleContext) run an nn.Module: call one (``self.layer(x)``, a module
    local, ``for layer in self.layers: layer(x)``), or call a method of its own class that does?
    Model code, not a helper: disabling it would run those modules eagerly too."""
    if any(_module_call(node, ctx) for node in scope_nodes(ctx.func.node) if isinstance(node, ast.Call)):
        return True
    klass = ctx.self_cls or ctx.func.cls
    return klass is not None and _self_runs_modules_once(ctx.func.node, klass, ctx.index)


# index -> {(def node, class name): (answer, files read)}: the rules ask again for every statement
# with a hit, and the answer needs only the index.
_SELF_RUNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _self_runs_modules_once(func: ast.AST, klass: ClassInfo, index) -> bool:
    table = _SELF_RUNS.get(index)
    if table is None:
        table = _SELF_RUNS[index] = {}
    key = (func, klass.qualname)
    found = table.get(key)
    if found is None:
        with recording() as read:
            answer = _self_runs_modules(func, klass, index, set())
        found = table[key] = (answer, frozenset(read))
    for path in found[1]:  # a replayed answer depends on the files it read, as the first one did
        note_access(path)
    return found[0]


def _module_call(call: ast.Call, ctx) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = ctx.class_of(ctx.value(func.value))
        if owner is None:
            return False
        if ctx.index.find_method(owner, func.attr) is not None:
            return False  # a method call: _self_runs_modules looks inside
        return _is_module_attr(owner, func.attr, ctx.index)
    if isinstance(func, ast.Name):
        klass = ctx.class_of(ctx.value(func))
        return klass is not None and ctx.index.is_nn_module(klass)
    return False


def _is_module_attr(klass: ClassInfo, attr: str, index) -> bool:
    if index.attr_kind(klass, attr) == MODULE:
        return True
    sub = index.attr_type(klass, attr)
    return sub is not None and index.is_nn_module(sub)


def _self_runs_modules(func: ast.AST, klass: ClassInfo, index, seen: set[str], depth: int = 0) -> bool:
    """Syntactic: ``self.<module attr>(...)``, a call of a name bound by ``for x in self.<module attr>``
    (``enumerate``/``zip`` of one too), or a call of a ``self`` method that does one of these."""
    looped = set()
    for node in scope_nodes(func):
        if isinstance(node, (ast.For, ast.comprehension)) and _iterates_modules(node.iter, klass, index):
            looped.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    for node in scope_nodes(func):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        if isinstance(callee, ast.Name) and callee.id in looped:
            return True
        if isinstance(callee, ast.Subscript) and is_self_attr(callee.value) \
                and _holds_modules(klass, callee.value.attr, index):
            return True  # self.layers[i](x)
        if not (isinstance(callee, ast.Attribute) and is_self_attr(callee)):
            continue
        method = index.find_method(klass, callee.attr)
        if method is None:
            if _is_module_attr(klass, callee.attr, index):
                return True
        elif depth < 3 and method.qualname not in seen:
            seen.add(method.qualname)
            if _self_runs_modules(method.node, klass, index, seen, depth + 1):
                return True
    return False


def _iterates_modules(expr: ast.AST, klass: ClassInfo, index) -> bool:
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("enumerate", "zip",
                                                                                           "reversed"):
        return any(_iterates_modules(arg, klass, index) for arg in expr.args)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in ("values", "items"):
        expr = expr.func.value
    return isinstance(expr, ast.Attribute) and is_self_attr(expr) and _holds_modules(klass, expr.attr, index)


def _holds_modules(klass: ClassInfo, attr: str, index) -> bool:
    """``self.<attr>`` is a module, a module container (``nn.ModuleList``, ...) or a list of modules."""
    if _is_module_attr(klass, attr, index):
        return True
    found = index.attr(klass, attr)
    if found is not None and any(c is not None and index.is_nn_module(c)
                                 for c in (index.lookup_class(q) for q in found.elems)):
        return True
    for cls in index.mro(klass):
        for method in cls.methods.values():
            for node in scope_nodes(method.node):
                value = self_assignment(node, attr)
                if isinstance(value, ast.Call) and dotted(value.func) \
                        and cls.module.resolve(dotted(value.func)) in MODULE_CONTAINERS:
                    return True
    return False


# ---------------------------------------------------------------------------------------------
# TCS005


def graph_break_call(mutation_line: int) -> GraphBreakCall:
    return GraphBreakCall(mutation_line=mutation_line)
