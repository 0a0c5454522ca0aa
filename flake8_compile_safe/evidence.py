"""Proofs for the fixer, computed where the analysis knows the facts: what is a torch tensor, what is a
Python int, how long a slice is. ``ast`` only (no libcst, no torch).

The analysis' value kinds (:mod:`.callgraph`) are deliberately generous: a method named ``sum`` makes
a tensor, a caller's argument makes a tensor. That is right for finding hazards and wrong for
rewriting code: ``np.sum(x)`` is not a tensor, and ``index_copy_`` on a NumPy array crashes. A
:class:`~.fixdata.Proof` here is made only of what the source says for certain: a ``torch.*``
allocation, a ``torch.Tensor`` annotation, a method of a proven tensor, an attribute whose every
assignment is one of those. What the kinds believe without proof comes back as ``inferred``.
"""

from __future__ import annotations

import ast
import weakref

from .callgraph import INTSTATE, TENSOR_VALUE
from .fixdata import OwnerClass, Proof, proven, unproven
from .project import INIT_METHODS, TORCH_NON_TENSOR, ClassInfo, ProjectIndex, dotted

MAX_DEPTH = 6
# Methods of a tensor whose result is not one tensor.
NON_TENSOR_METHODS = {
    "item", "tolist", "numpy", "size", "dim", "numel", "nelement", "element_size", "stride", "is_contiguous",
    "get_device", "is_floating_point", "is_complex", "data_ptr", "storage", "untyped_storage", "chunk", "split",
    "unbind", "tensor_split", "__len__", "type", "backward", "register_hook",
}
# With a ``dim`` argument these return (values, indices).
PAIR_WITH_DIM = {"max", "min", "sort", "topk", "median", "mode", "kthvalue", "aminmax", "cummax", "cummin"}
# torch functions that return tuples or Python values.
TORCH_NOT_ONE_TENSOR = {
    "split", "chunk", "unbind", "tensor_split", "sort", "topk", "kthvalue", "broadcast_tensors", "meshgrid",
    "unique", "unique_consecutive", "std_mean", "var_mean", "frexp", "aminmax", "histogram", "lu", "qr", "svd",
    "eig", "slogdet", "geqrf", "lobpcg", "pca_lowrank", "svd_lowrank", "max", "min", "median", "mode",
    "nonzero_static", "where", "cummax", "cummin", "is_nonzero", "equal", "allclose", "is_same_size",
    "result_type", "promote_types", "can_cast", "numel", "is_storage", "set_default_dtype", "manual_seed",
    "seed", "initial_seed", "get_rng_state", "set_grad_enabled", "use_deterministic_algorithms",
}
# torch.nn layers whose forward returns one tensor.
SINGLE_TENSOR_LAYERS = {
    "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "LayerNorm", "GroupNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "Embedding", "Dropout", "Dropout1d", "Dropout2d",
    "Identity", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Mish", "LeakyReLU", "ELU",
    "Hardswish", "Softplus", "Flatten", "Unflatten", "Upsample", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "PixelShuffle", "ZeroPad2d", "ConstantPad1d", "ReflectionPad1d",
}
INTEGER_DTYPES = {"torch.long", "torch.int64", "torch.int", "torch.int32", "torch.int16", "torch.int8",
                  "torch.uint8", "torch.short"}
INT_METHODS = {"long", "int", "short"}
SHAPE_CALLS = {"size", "dim", "numel", "nelement", "__len__"}
MAX_LEN_NAMES = ("max_len", "max_length", "max_seq_len", "max_seq_length", "max_cache_len", "max_cache_length",
                 "max_position_embeddings", "max_positions", "n_positions", "n_ctx", "block_size", "context_length",
                 "max_batch_len", "cache_size", "window_size", "max_target_positions", "max_source_positions")


def src(node: ast.AST, limit: int = 200) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def owner_class(klass: ClassInfo, index: ProjectIndex) -> OwnerClass:
    return OwnerClass(str(klass.module.path), klass.qualname, klass.name, klass.node.lineno, index.is_nn_module(klass))


# ---------------------------------------------------------------------------------------------
# Scopes: the statements and names of one function, nested scopes left out


def scope_nodes(func: ast.AST):
    """Every node of ``func``'s own scope (not nested functions, classes, lambdas, comprehensions)."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
                             ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(node))


class Bindings:
    """How each local name of one function is bound: ``name -> [value node or a marker]``."""

    UNKNOWN = "unknown"  # bound by something we do not follow (unpacking, with-as, import, ...)

    def __init__(self, func: ast.FunctionDef | ast.AsyncFunctionDef):
        self.func = func
        self.params = {a.arg: a for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
        for extra in (func.args.vararg, func.args.kwarg):
            if extra is not None:
                self.params[extra.arg] = None
        self.values: dict[str, list] = {}
        self.statements: dict[str, list[ast.AST]] = {}  # name -> binding statements (Assign...)
        for node in scope_nodes(func):
            self._note(node)

    def _add(self, name: str, value, stmt: ast.AST | None) -> None:
        self.values.setdefault(name, []).append(value)
        if stmt is not None:
            self.statements.setdefault(name, []).append(stmt)

    def _note(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._target(target, node.value, node)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._target(node.target, node.value, node)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self._add(node.target.id, ("aug", node), node)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._target(node.target, ("iter", node.iter), node)
        elif isinstance(node, ast.NamedExpr):
            self._add(node.target.id, node.value, node)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._target(item.optional_vars, self.UNKNOWN, node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                self._add((alias.asname or alias.name).split(".")[0], self.UNKNOWN, node)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                self._add(name, self.UNKNOWN, node)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._add(node.name, self.UNKNOWN, node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._add(node.name, self.UNKNOWN, node)

    def _target(self, target: ast.AST, value, stmt: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._add(target.id, value, stmt)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) \
                else None
            for i, elt in enumerate(target.elts):
                if values is not None:
                    self._target(elt, values[i], stmt)
                elif isinstance(value, ast.AST):
                    self._target(elt, ("unpack", value, i), stmt)
                else:
                    self._target(elt, value, stmt)
        elif isinstance(target, ast.Starred):
            self._target(target.value, self.UNKNOWN, stmt)

    def of(self, name: str) -> list:
        return self.values.get(name, [])

    def single_statement(self, name: str) -> ast.AST | None:
        """The one statement that binds ``name`` (None when it is a parameter or bound more than once)."""
        stmts = self.statements.get(name, [])
        if name in self.params or len(stmts) != 1:
            return None
        return stmts[0]


_BINDINGS: "weakref.WeakKeyDictionary[ast.AST, Bindings]" = weakref.WeakKeyDictionary()


def bindings(func: ast.AST) -> Bindings:
    found = _BINDINGS.get(func)
    if found is None:
        found = _BINDINGS[func] = Bindings(func)
    return found


# ---------------------------------------------------------------------------------------------
# Tensors


class TensorProver:
    """Is an expression a torch tensor, for certain? Static: torch calls, annotations, assignments."""

    def __init__(self, index: ProjectIndex):
        self.index = index
        self._attrs: dict[tuple[str, str], Proof] = {}
        self._visiting: set[tuple[int, str]] = set()  # (function, name) being proven: `x = x[1:]` is neutral
        self._returns: dict[tuple[str, str], Proof] = {}  # (function, self class) -> its returns are tensors

    # -- expressions in a function ---------------------------------------------------------------
    def expr(self, node: ast.AST, module, func: ast.AST | None, self_cls: ClassInfo | None,
             an=None, depth: int = 0) -> Proof:
        proof = self._expr(node, module, func, self_cls, an, depth)
        if not proof.ok and not proof.inferred and an is not None and an.kind_of(node).value == TENSOR_VALUE:
            return unproven(f"`{src(node, 60)}` looks like a tensor to the analysis, but nothing proves it "
                            f"({proof.why})", inferred=True)
        return proof

    def _expr(self, node, module, func, self_cls, an, depth) -> Proof:
        if depth > MAX_DEPTH:
            return unproven(f"`{src(node, 60)}`: too many steps to prove it is a tensor")
        down = depth + 1
        if isinstance(node, ast.Name):
            return self._name(node.id, module, func, self_cls, an, down)
        if isinstance(node, ast.Attribute):
            if node.attr in ("T", "mT", "H", "mH", "data", "real", "imag"):
                inner = self._expr(node.value, module, func, self_cls, an, down)
                return proven(inner.why) if inner.ok else inner
            klass = self._owner(node.value, func, self_cls, an)
            if klass is None:
                return unproven(f"the class of `{src(node.value, 60)}` is not known")
            return self.attr(klass, node.attr)
        if isinstance(node, ast.Subscript):
            inner = self._expr(node.value, module, func, self_cls, an, down)
            return proven(inner.why) if inner.ok else unproven(inner.why)
        if isinstance(node, ast.Call):
            return self._call(node, module, func, self_cls, an, down)
        if isinstance(node, ast.BinOp):
            left = self._expr(node.left, module, func, self_cls, an, down)
            if left.ok:
                return left
            right = self._expr(node.right, module, func, self_cls, an, down)
            return right if right.ok else unproven(left.why)
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            return self._expr(node.operand, module, func, self_cls, an, down)
        if isinstance(node, ast.IfExp):
            body = self._expr(node.body, module, func, self_cls, an, down)
            orelse = self._expr(node.orelse, module, func, self_cls, an, down)
            return body if body.ok and orelse.ok else unproven(body.why if not body.ok else orelse.why)
        return unproven(f"`{src(node, 60)}` is not a torch tensor as far as the source says")

    def _owner(self, node: ast.AST, func, self_cls, an) -> ClassInfo | None:
        if isinstance(node, ast.Name) and node.id == "self" and self_cls is not None:
            return self_cls
        if an is not None:
            return an.class_of(an.kind_of(node))
        if isinstance(node, ast.Name) and func is not None:  # a parameter annotated with a project class
            scope = bindings(func)
            arg = scope.params.get(node.id)
            if arg is not None and arg.annotation is not None and not scope.of(node.id) and self_cls is not None:
                _, qual = self.index.annotation_kind(self_cls.module, arg.annotation)
                return self.index.lookup_class(qual) if qual else None
        return None

    def _name(self, name: str, module, func, self_cls, an, depth) -> Proof:
        if func is None:
            return unproven(f"`{name}` is not a local")
        scope = bindings(func)
        if name in scope.params:
            arg = scope.params[name]
            if arg is not None and arg.annotation is not None and self.annotation(module, arg.annotation):
                return proven(f"`{name}` is annotated as a tensor")
            if not scope.of(name):
                return unproven(f"parameter `{name}` is not annotated as a tensor")
        values = scope.of(name)
        if not values:
            return unproven(f"`{name}` is not bound in this function")
        key = (id(func), name)
        if key in self._visiting:
            return proven("(itself)")  # decided by its other bindings
        self._visiting.add(key)
        try:
            for value in values:
                proof = self._binding(value, module, func, self_cls, an, depth)
                if not proof.ok:
                    return unproven(proof.why if proof.why.startswith(f"`{name}`") else f"`{name}`: {proof.why}")
        finally:
            self._visiting.discard(key)
        return proven(f"`{name}` is only ever assigned tensors")

    def _binding(self, value, module, func, self_cls, an, depth) -> Proof:
        if isinstance(value, ast.AST):
            return self._expr(value, module, func, self_cls, None, depth)
        if isinstance(value, tuple) and value[0] == "aug":
            return proven("an augmented assignment keeps a tensor a tensor")
        if isinstance(value, tuple) and value[0] == "unpack":
            _, whole, _ = value
            splits = ("chunk", "split", "unbind", "tensor_split")
            name = dotted(whole.func) if isinstance(whole, ast.Call) else None
            if name and module.resolve(name) in {f"torch.{s}" for s in splits} and whole.args:
                inner = self._expr(whole.args[0], module, func, self_cls, None, depth)
                return proven("an element of a tensor's chunks") if inner.ok else inner
            if isinstance(whole, ast.Call) and isinstance(whole.func, ast.Attribute) and whole.func.attr in splits:
                inner = self._expr(whole.func.value, module, func, self_cls, None, depth)
                return proven("an element of a tensor's chunks") if inner.ok else inner
            return unproven("bound by unpacking")
        if isinstance(value, tuple) and value[0] == "iter":
            inner = self._expr(value[1], module, func, self_cls, None, depth)
            return proven("iterating a tensor yields tensors") if inner.ok else unproven("a loop variable")
        return unproven("bound by a statement the fixer does not follow")

    def _call(self, node: ast.Call, module, func, self_cls, an, depth) -> Proof:
        name = dotted(node.func)
        resolved = module.resolve(name) if name else ""
        if resolved.startswith("torch.") and not resolved.startswith(("torch._dynamo.", "torch.compiler.",
                                                                     "torch.cuda.", "torch.backends.")):
            last = resolved.rsplit(".", 1)[-1]
            if last[:1].islower() and resolved not in TORCH_NON_TENSOR and last not in TORCH_NOT_ONE_TENSOR:
                return proven(f"`{resolved}(...)` returns a tensor")
            return unproven(f"`{resolved}(...)` does not return one tensor")
        if isinstance(node.func, ast.Attribute):
            owner = self._owner(node.func.value, func, self_cls, an)
            if owner is not None:  # self.helper(...), self.layer(...): what the project code returns
                return self._project_call(owner, node.func.attr, depth)
            method = node.func.attr
            if method in NON_TENSOR_METHODS or (method in PAIR_WITH_DIM and (node.args or node.keywords)):
                return unproven(f"`.{method}(...)` does not return one tensor")
            recv = self._expr(node.func.value, module, func, self_cls, an, depth)
            if recv.ok:
                return proven(f"a method of a tensor ({recv.why})")
            return unproven(recv.why)
        found = self.index.lookup(resolved) if resolved else None
        if found is not None and hasattr(found, "node") and isinstance(found.node, (ast.FunctionDef,
                                                                                    ast.AsyncFunctionDef)):
            return self.returns(found, None, depth)
        return unproven(f"`{src(node.func, 60)}(...)` is not known to return a tensor")

    def _project_call(self, owner: ClassInfo, attr: str, depth: int) -> Proof:
        """``obj.attr(...)`` on a project class: a method's returns, or a layer attribute's forward."""
        method = self.index.find_method(owner, attr)
        if method is not None:
            return self.returns(method, owner, depth)
        values = [v for cls in related_classes(self.index, owner) for m in cls.methods.values()
                  for n in scope_nodes(m.node) if (v := _self_assignment(n, attr)) is not _NO and v is not None
                  and not (isinstance(v, ast.Constant) and v.value is None)]
        if not values:
            return unproven(f"`{owner.name}.{attr}` is never assigned")
        for value in values:
            proof = self._layer(value, owner, depth)
            if not proof.ok:
                return unproven(f"`{owner.name}.{attr}(...)`: {proof.why}")
        return proven(f"`{owner.name}.{attr}` holds layers that return a tensor")

    def _layer(self, value: ast.AST, owner: ClassInfo, depth: int) -> Proof:
        """A module constructed by ``value`` returns one tensor from its forward."""
        name = dotted(value.func) if isinstance(value, ast.Call) else None
        resolved = owner.module.resolve(name) if name else ""
        if resolved.startswith("torch.nn.") and resolved.rsplit(".", 1)[-1] in SINGLE_TENSOR_LAYERS:
            return proven(f"`{resolved}`")
        klass = self.index.lookup_class(resolved) if resolved else None
        forward = self.index.find_method(klass, "forward") if klass is not None else None
        if forward is None:
            return unproven(f"`{src(value, 60)}` is not a layer known to return one tensor")
        return self.returns(forward, klass, depth)

    def returns(self, func_info, self_cls: ClassInfo | None, depth: int = 0) -> Proof:
        """Every ``return`` of a project function returns a proven tensor."""
        key = (func_info.qualname, self_cls.qualname if self_cls else "")
        if key in self._returns:
            return self._returns[key]
        self._returns[key] = unproven("(recursive)")
        values = [n.value for n in scope_nodes(func_info.node) if isinstance(n, ast.Return)]
        proof = proven(f"`{func_info.name}` returns tensors")
        if not values or any(v is None for v in values):
            proof = unproven(f"`{func_info.name}` does not always return a value")
        else:
            cls = self_cls or func_info.cls
            for value in values:
                inner = self._expr(value, func_info.module, func_info.node, cls, None, depth + 1)
                if not inner.ok:
                    proof = unproven(f"`{func_info.name}` may return something else ({inner.why})")
                    break
        self._returns[key] = proof
        return proof

    # -- annotations and attributes -------------------------------------------------------------
    def annotation(self, module, ann: ast.AST) -> bool:
        kind, _ = self.index.annotation_kind(module, ann)
        return kind == TENSOR_VALUE

    def attr(self, klass: ClassInfo, attr: str) -> Proof:
        """Every assignment of ``self.<attr>`` in the class, its bases and subclasses is a tensor (or None)."""
        key = (klass.qualname, attr)
        if key not in self._attrs:
            self._attrs[key] = unproven("(cycle)")
            self._attrs[key] = self._attr(klass, attr)
        return self._attrs[key]

    def _attr(self, klass: ClassInfo, attr: str) -> Proof:
        seen_any = False
        for cls in related_classes(self.index, klass):
            for item in cls.node.body:  # dataclass fields and class-level annotations
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id == attr:
                    if self.annotation(cls.module, item.annotation):
                        return proven(f"`{cls.name}.{attr}` is declared a tensor")
            for method in cls.methods.values():
                for node in scope_nodes(method.node):
                    value = _self_assignment(node, attr)
                    if value is _NO:
                        continue
                    seen_any = True
                    if value is None or (isinstance(value, ast.Constant) and value.value is None):
                        continue
                    proof = self._expr(value, cls.module, method.node, klass, None, 1)
                    if not proof.ok:
                        return unproven(f"`{cls.name}.{attr}` is assigned `{src(value, 60)}` in "
                                        f"{method.name} ({proof.why})")
        if not seen_any:
            return unproven(f"`{klass.name}.{attr}` is never assigned in its class")
        return proven(f"`{klass.name}.{attr}` is only ever assigned tensors")


_NO = object()


def _self_assignment(node: ast.AST, attr: str):
    """The value assigned to ``self.<attr>`` by ``node`` (None: in place, no new value), or ``_NO``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute) and call.func.attr == "register_buffer" and len(call.args) >= 2 \
                and isinstance(call.args[0], ast.Constant) and call.args[0].value == attr:
            return call.args[1]
        return _NO
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for elt in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if _is_self_attr(elt, attr):
                    if isinstance(target, (ast.Tuple, ast.List)):
                        return ast.Name("<unpacked>")  # not provable
                    return node.value
        return _NO
    if isinstance(node, ast.AugAssign) and _is_self_attr(node.target, attr):
        return None
    return _NO


def _is_self_attr(node: ast.AST, attr: str | None = None) -> bool:
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and (attr is None or node.attr == attr))


def related_classes(index: ProjectIndex, klass: ClassInfo) -> list[ClassInfo]:
    """The class, its project bases and its project subclasses: every method that can touch ``self.x``."""
    out = list(index.mro(klass))
    names = {c.qualname for c in out}
    for other in index.classes():
        if other.qualname not in names and any(c.qualname == klass.qualname for c in index.mro(other)):
            out.append(other)
            names.add(other.qualname)
    return out


_PROVERS: "weakref.WeakKeyDictionary[ProjectIndex, TensorProver]" = weakref.WeakKeyDictionary()


def prover(index: ProjectIndex) -> TensorProver:
    found = _PROVERS.get(index)
    if found is None:
        found = _PROVERS[index] = TensorProver(index)
    return found


def tensor_proof(node: ast.AST, an) -> Proof:
    """Is ``node`` (in the function ``an`` analyses) a torch tensor for certain?"""
    return prover(an.index).expr(node, an.module, an.func.node, an.ctx.self_cls or an.func.cls, an)


# ---------------------------------------------------------------------------------------------
# Python ints


def int_proof(node: ast.AST, an, depth: int = 0) -> Proof:
    """Is ``node`` a Python int (or a SymInt: a shape) for certain?"""
    if depth > MAX_DEPTH:
        return unproven(f"`{src(node, 60)}`: too many steps")
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return proven("an int literal")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return int_proof(node.operand, an, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
        left, right = int_proof(node.left, an, depth + 1), int_proof(node.right, an, depth + 1)
        return left if not left.ok else right
    if isinstance(node, ast.Call):
        name = dotted(node.func)
        if name in ("int", "len") and an.module.resolve(name) == name:
            return proven(f"`{name}(...)` is an int")
        if isinstance(node.func, ast.Attribute) and node.func.attr in SHAPE_CALLS:
            return proven("a size")
        return unproven(f"`{src(node, 60)}` is not known to be an int")
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        return proven("a size")
    if isinstance(node, ast.Attribute):
        if an.kind_of(node).value == INTSTATE:
            return proven("a Python int attribute")
        return unproven(f"`{src(node, 60)}` is not known to be an int")
    if isinstance(node, ast.Name):
        scope = bindings(an.func.node)
        if node.id in scope.params:
            arg = scope.params[node.id]
            if arg is not None and arg.annotation is not None and dotted(arg.annotation) == "int":
                return proven(f"`{node.id}: int`")
            return unproven(f"parameter `{node.id}` is not annotated `int`")
        values = scope.of(node.id)
        if not values:
            return unproven(f"`{node.id}` is not bound here")
        for value in values:
            if isinstance(value, tuple) and value[0] == "iter":
                it = value[1]
                if isinstance(it, ast.Call) and dotted(it.func) == "range":
                    continue
                return unproven(f"`{node.id}` is a loop variable")
            if isinstance(value, tuple) and value[0] == "aug":
                continue
            if not isinstance(value, ast.AST):
                return unproven(f"`{node.id}` is bound by a statement the fixer does not follow")
            proof = int_proof(value, an, depth + 1)
            if not proof.ok:
                return unproven(f"`{node.id}`: {proof.why}")
        return proven(f"`{node.id}` is only ever an int")
    return unproven(f"`{src(node, 60)}` is not known to be an int")


def integer_dtype_proof(node: ast.AST, an) -> Proof:
    """``node`` (a tensor) has an integer dtype: every allocation of it names one."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in INT_METHODS:
        return proven(f"`.{node.func.attr}()`")
    if not isinstance(node, ast.Attribute):
        return unproven(f"the dtype of `{src(node, 60)}` is not known")
    owner = an.class_of(an.kind_of(node.value)) if not _is_self_attr(node) else (an.ctx.self_cls or an.func.cls)
    if owner is None:
        return unproven(f"the class of `{src(node.value, 60)}` is not known")
    values = []
    for cls in related_classes(an.index, owner):
        for method in cls.methods.values():
            for stmt in scope_nodes(method.node):
                value = _self_assignment(stmt, node.attr)
                if value is not _NO and value is not None:
                    values.append((cls.module, value))
    if not values:
        return unproven(f"no allocation of `{node.attr}` found")
    for module, value in values:
        if not _integer_allocation(module, value):
            return unproven(f"`{src(value, 60)}` does not name an integer dtype")
    return proven(f"`{node.attr}` is allocated with an integer dtype")


def _integer_allocation(module, value: ast.AST) -> bool:
    if not isinstance(value, ast.Call):
        return False
    for keyword in value.keywords:
        if keyword.arg == "dtype":
            name = dotted(keyword.value)
            return bool(name) and module.resolve(name) in INTEGER_DTYPES
    name = dotted(value.func)
    resolved = module.resolve(name) if name else ""
    if resolved == "torch.tensor" and value.args and isinstance(value.args[0], ast.Constant):
        return type(value.args[0].value) is int
    if resolved == "torch.arange":
        return all(isinstance(a, ast.Constant) and type(a.value) is int for a in value.args[1:]) and bool(value.args)
    return False


# ---------------------------------------------------------------------------------------------
# Straight-line reasoning about slice lengths


_TRANSPARENT = {"item", "clone", "long", "int", "detach"}


def normalise(node: ast.AST, an, stop: ast.AST, depth: int = 0) -> ast.AST:
    """``node`` with single-assignment locals replaced by their values and value-preserving wrappers
    (``int(...)``, ``.item()``, ``.clone()``) dropped, as long as the state they read is not written
    between the binding and ``stop`` (the statement that uses them)."""
    if depth > MAX_DEPTH:
        return node
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1:
            return normalise(node.args[0], an, stop, depth + 1)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _TRANSPARENT and not node.args:
            return normalise(node.func.value, an, stop, depth + 1)
        return node
    if isinstance(node, ast.BinOp):
        return ast.BinOp(normalise(node.left, an, stop, depth + 1), node.op, normalise(node.right, an, stop, depth + 1))
    if isinstance(node, ast.Name):
        scope = bindings(an.func.node)
        stmt = scope.single_statement(node.id)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and _unchanged_between(stmt, stop, stmt.value, an):
            return normalise(stmt.value, an, stmt, depth + 1)
    return node


def _unchanged_between(first: ast.stmt, last: ast.stmt, value: ast.AST, an) -> bool:
    """``first`` and ``last`` sit in one block, ``first`` before ``last``, and nothing in between may
    change what ``value`` reads: no call, no assignment to a name or attribute ``value`` reads."""
    block = _block_of(an.func.node, first)
    if block is None or last not in block:
        return False
    i, j = block.index(first), block.index(last)
    if i >= j:
        return False
    read = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)}
    for stmt in block[i + 1:j]:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                return False
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                if any(_written_name(t) in read for t in targets):
                    return False
    return True


def _written_name(target: ast.AST) -> str | None:
    """The name or attribute whose value an assignment to ``target`` changes (``x``, ``self.x``, ``self.x[i]``)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return next((n for n in map(_written_name, target.elts) if n), None)
    if isinstance(target, ast.Starred):
        return _written_name(target.value)
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _block_of(func: ast.AST, stmt: ast.stmt) -> list[ast.stmt] | None:
    for node in [func, *scope_nodes(func)]:
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                return block
    return None


def statement_of(func: ast.AST, node: ast.AST) -> ast.stmt | None:
    """The statement of ``func``'s own scope holding ``node``."""
    line = getattr(node, "lineno", None)
    best = None
    for candidate in scope_nodes(func):
        if isinstance(candidate, ast.stmt) and candidate.lineno <= (line or 0) <= (candidate.end_lineno or 0):
            if any(n is node for n in ast.walk(candidate)):
                if best is None or candidate.lineno >= best.lineno:
                    best = candidate
    return best


def slice_length(lower: ast.AST | None, upper: ast.AST, stmt: ast.stmt, an) -> tuple[str, str]:
    """(source of n, why) where ``upper`` is provably ``lower + n`` at ``stmt``; ("", why not) otherwise."""
    lo = normalise(lower, an, stmt) if lower is not None else ast.Constant(0)
    hi = normalise(upper, an, stmt)
    if isinstance(hi, ast.BinOp) and isinstance(hi.op, ast.Add):
        for start, n in ((hi.left, hi.right), (hi.right, hi.left)):
            if ast.dump(start) == ast.dump(lo) and _names_stable(n, stmt, an):
                if isinstance(lo, ast.Constant) and lo.value == 0 and lower is None:
                    break
                return src(n), f"the upper bound is the lower bound plus `{src(n)}`"
    if lower is None:
        return "", (f"the slice `[:{src(upper, 40)}]` has a data-dependent length: read the whole buffer and mask "
                    "the unwritten part where it is used (no general rewrite keeps the shape)")
    return "", (f"the slice length `{src(upper, 40)} - {src(lower, 40)}` is not provably a size known on the "
                "host")


def _names_stable(node: ast.AST, stmt: ast.stmt, an) -> bool:
    """The names ``node`` reads are parameters never rebound, or bound once before ``stmt``."""
    scope = bindings(an.func.node)
    for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
        if name in scope.params and not scope.of(name):
            continue
        if scope.single_statement(name) is not None and scope.single_statement(name).lineno < stmt.lineno:
            continue
        if name == "self":
            continue
        return False
    return not any(isinstance(n, ast.Call) and not (isinstance(n.func, ast.Attribute) and n.func.attr in SHAPE_CALLS)
                   for n in ast.walk(node))


# ---------------------------------------------------------------------------------------------
# Project-wide attribute reads (for int counters)


class AttributeUses:
    """Where each attribute name is read or written through something other than ``self``."""

    def __init__(self, index: ProjectIndex):
        self.non_self: dict[str, list[tuple[str, int]]] = {}
        for module in index.modules.values():
            if module.tree is None:
                continue
            for node in ast.walk(module.tree):
                if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                            and node.value.id == "self"):
                    self.non_self.setdefault(node.attr, []).append((str(module.path), node.lineno))


_USES: "weakref.WeakKeyDictionary[ProjectIndex, AttributeUses]" = weakref.WeakKeyDictionary()


def attribute_uses(index: ProjectIndex) -> AttributeUses:
    found = _USES.get(index)
    if found is None:
        found = _USES[index] = AttributeUses(index)
    return found


def init_methods(klass: ClassInfo, index: ProjectIndex):
    for cls in index.mro(klass):
        for name in INIT_METHODS:
            if name in cls.methods:
                yield cls, cls.methods[name]
