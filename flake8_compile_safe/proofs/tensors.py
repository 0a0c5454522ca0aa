"""Is an expression a torch tensor, for certain? Static: torch calls, annotations, assignments, returns."""

from __future__ import annotations

import ast
import weakref

from ..fixdata import Proof, proven, unproven
from ..project import ClassInfo, ProjectIndex
from ..values import TENSOR_VALUE, TORCH_NON_TENSOR, dotted
from .scopes import bindings, scope_nodes

MAX_DEPTH = 6
# Methods of a tensor whose result is not one tensor.
NON_TENSOR_METHODS = {
    "item", "tolist", "numpy", "size", "dim", "numel", "nelement", "element_size", "stride", "is_contiguous",
    "get_device", "is_floating_point", "is_complex", "data_ptr", "storage", "untyped_storage", "chunk", "split",
    "unbind", "tensor_split", "__len__", "type", "backward", "register_hook",
}
SHAPE_CALLS = {"size", "dim", "numel", "nelement", "__len__"}
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


def src(node: ast.AST, limit: int = 200) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
             ctx=None, depth: int = 0) -> Proof:
        proof = self._expr(node, module, func, self_cls, ctx, depth)
        if not proof.ok and not proof.inferred and ctx is not None and ctx.value(node).value == TENSOR_VALUE:
            return unproven(f"`{src(node, 60)}` looks like a tensor to the analysis, but nothing proves it "
                            f"({proof.why})", inferred=True)
        return proof

    def _expr(self, node, module, func, self_cls, ctx, depth) -> Proof:
        if depth > MAX_DEPTH:
            return unproven(f"`{src(node, 60)}`: too many steps to prove it is a tensor")
        down = depth + 1
        if isinstance(node, ast.Name):
            return self._name(node.id, module, func, self_cls, ctx, down)
        if isinstance(node, ast.Attribute):
            if node.attr in ("T", "mT", "H", "mH", "data", "real", "imag"):
                inner = self._expr(node.value, module, func, self_cls, ctx, down)
                return proven(inner.why) if inner.ok else inner
            klass = self._owner(node.value, func, self_cls, ctx)
            if klass is None:
                return unproven(f"the class of `{src(node.value, 60)}` is not known")
            return self.attr(klass, node.attr)
        if isinstance(node, ast.Subscript):
            inner = self._expr(node.value, module, func, self_cls, ctx, down)
            return proven(inner.why) if inner.ok else unproven(inner.why)
        if isinstance(node, ast.Call):
            return self._call(node, module, func, self_cls, ctx, down)
        if isinstance(node, ast.BinOp):
            left = self._expr(node.left, module, func, self_cls, ctx, down)
            if left.ok:
                return left
            right = self._expr(node.right, module, func, self_cls, ctx, down)
            return right if right.ok else unproven(left.why)
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            return self._expr(node.operand, module, func, self_cls, ctx, down)
        if isinstance(node, ast.IfExp):
            body = self._expr(node.body, module, func, self_cls, ctx, down)
            orelse = self._expr(node.orelse, module, func, self_cls, ctx, down)
            return body if body.ok and orelse.ok else unproven(body.why if not body.ok else orelse.why)
        return unproven(f"`{src(node, 60)}` is not a torch tensor as far as the source says")

    def _owner(self, node: ast.AST, func, self_cls, ctx) -> ClassInfo | None:
        if isinstance(node, ast.Name) and node.id == "self" and self_cls is not None:
            return self_cls
        if ctx is not None:
            return ctx.class_of(ctx.value(node))
        if isinstance(node, ast.Name) and func is not None:  # a parameter annotated with a project class
            scope = bindings(func)
            arg = scope.params.get(node.id)
            if arg is not None and arg.annotation is not None and not scope.of(node.id) and self_cls is not None:
                _, qual = self.index.annotation_kind(self_cls.module, arg.annotation)
                return self.index.lookup_class(qual) if qual else None
        return None

    def _name(self, name: str, module, func, self_cls, ctx, depth) -> Proof:
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
                proof = self._binding(value, module, func, self_cls, ctx, depth)
                if not proof.ok:
                    return unproven(proof.why if proof.why.startswith(f"`{name}`") else f"`{name}`: {proof.why}")
        finally:
            self._visiting.discard(key)
        return proven(f"`{name}` is only ever assigned tensors")

    def _binding(self, value, module, func, self_cls, ctx, depth) -> Proof:
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

    def _call(self, node: ast.Call, module, func, self_cls, ctx, depth) -> Proof:
        name = dotted(node.func)
        resolved = module.resolve(name) if name else ""
        if resolved.startswith("torch.") and not resolved.startswith(("torch._dynamo.", "torch.compiler.",
                                                                     "torch.cuda.", "torch.backends.")):
            last = resolved.rsplit(".", 1)[-1]
            if last[:1].islower() and resolved not in TORCH_NON_TENSOR and last not in TORCH_NOT_ONE_TENSOR:
                return proven(f"`{resolved}(...)` returns a tensor")
            return unproven(f"`{resolved}(...)` does not return one tensor")
        if isinstance(node.func, ast.Attribute):
            owner = self._owner(node.func.value, func, self_cls, ctx)
            if owner is not None:  # self.helper(...), self.layer(...): what the project code returns
                return self._project_call(owner, node.func.attr, depth)
            method = node.func.attr
            if method in NON_TENSOR_METHODS or (method in PAIR_WITH_DIM and (node.args or node.keywords)):
                return unproven(f"`.{method}(...)` does not return one tensor")
            recv = self._expr(node.func.value, module, func, self_cls, ctx, depth)
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
                  for n in scope_nodes(m.node) if (v := self_assignment(n, attr)) is not NO and v is not None
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
                    value = self_assignment(node, attr)
                    if value is NO:
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


NO = object()


def self_assignment(node: ast.AST, attr: str):
    """The value assigned to ``self.<attr>`` by ``node`` (None: in place, no new value), or ``NO``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute) and call.func.attr == "register_buffer" and len(call.args) >= 2 \
                and isinstance(call.args[0], ast.Constant) and call.args[0].value == attr:
            return call.args[1]
        return NO
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for elt in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if is_self_attr(elt, attr):
                    if isinstance(target, (ast.Tuple, ast.List)):
                        return ast.Name("<unpacked>")  # not provable
                    return node.value
        return NO
    if isinstance(node, ast.AugAssign) and is_self_attr(node.target, attr):
        return None
    return NO


def is_self_attr(node: ast.AST, attr: str | None = None) -> bool:
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and (attr is None or node.attr == attr))


def related_classes(index: ProjectIndex, klass: ClassInfo) -> list[ClassInfo]:
    """The class, its project bases and its project subclasses: every method that can touch ``self.x``."""
    out = list(index.mro(klass))
    names = {c.qualname for c in out}
    for other in index.with_in_mro(klass.qualname):
        if other.qualname not in names:
            out.append(other)
            names.add(other.qualname)
    return out


_PROVERS: "weakref.WeakKeyDictionary[ProjectIndex, TensorProver]" = weakref.WeakKeyDictionary()


def prover(index: ProjectIndex) -> TensorProver:
    found = _PROVERS.get(index)
    if found is None:
        found = _PROVERS[index] = TensorProver(index)
    return found


def tensor_proof(node: ast.AST, ctx) -> Proof:
    """Is ``node`` (in the function of ``ctx``, a RuleContext) a torch tensor for certain?"""
    return prover(ctx.index).expr(node, ctx.module, ctx.func.node, ctx.self_cls or ctx.func.cls, ctx)
