"""What an expression evaluates to, inside one function in one context (a mixin of the analyzer).

Tensors (and boolean masks among them), numbers read out of tensors, mutable int state,
containers and what their elements are, project objects (with the static type a subclass may
stand in for), callables (functions, bound methods, ``functools.partial``). Unknown stays
unknown.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from .values import (
    DICT, HOST, INT, INTSTATE, LIST, NOTHING, PARTIAL, TENSOR_KINDS, TENSOR_VALUE, Val, class_val, dotted, join,
    torch_call_is_tensor, value_only,
)

SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad", "layout", "is_sparse"}
TENSOR_ATTRS = {"T", "mT", "H", "mH", "data", "real", "imag", "grad", "values", "indices"}
STATIC_TENSOR_METHODS = {"size", "dim", "numel", "nelement", "element_size", "stride", "is_contiguous",
                         "get_device", "is_floating_point", "is_complex", "type", "data_ptr", "ndimension"}
HOST_METHODS = {"item", "tolist", "numpy"}
# Methods that only tensors (and arrays) have: their result is a tensor even when the receiver's
# type is unknown (an unannotated `x` in `forward(self, x)`).
TENSORISH_METHODS = {
    "any", "all", "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "norm", "abs", "float",
    "long", "half", "bfloat16", "cuda", "clone", "detach", "contiguous", "view", "reshape", "squeeze",
    "unsqueeze", "transpose", "permute", "matmul", "softmax", "log_softmax", "exp", "log", "sqrt", "sigmoid",
    "masked_fill", "expand", "flatten", "unbind", "chunk", "split", "cumsum", "prod", "std", "var", "eq", "ne",
    "gt", "lt", "ge", "le", "isnan", "isinf", "nonzero", "count_nonzero", "type_as", "new_zeros", "new_ones",
    "bool", "logical_not", "logical_and", "logical_or",
}
# Results that are boolean tensors (masks).
BOOL_METHODS = {"bool", "eq", "ne", "gt", "lt", "ge", "le", "isnan", "isinf", "isfinite", "logical_not",
                "logical_and", "logical_or", "logical_xor", "isin", "isclose", "signbit", "isneginf", "isposinf"}
BOOL_FUNCTIONS = {f"torch.{name}" for name in BOOL_METHODS} | {"torch.greater", "torch.less", "torch.equal"}
IDENTITY_ITERATORS = {"list", "tuple", "reversed", "iter", "sorted"}
COPIES = {"copy.deepcopy", "copy.copy"}


def _fresh(val: Val, deep: bool) -> Val:
    """``val`` as a copy made by this call: the copy is fresh; with ``deep``, so is everything in it
    (``copy.copy`` of a list holds the same elements)."""
    if val is NOTHING:
        return NOTHING
    if not deep:
        return replace(val, fresh=True)
    return replace(val, fresh=True, elems=_fresh(val.elems, True) if val.elems is not None else None,
                   items=tuple(_fresh(item, True) for item in val.items) if val.items else val.items)


def _is_bool_dtype(node: ast.expr, module) -> bool:
    name = dotted(node)
    return bool(name) and module.resolve(name) == "torch.bool"


class Evaluator:
    """Expression values; expects ``self.env``, ``self.index``, ``self.module``, ``self.engine``."""

    def class_of(self, val: Val):
        return self.index.lookup_class(val.cls) if val.cls else None

    def classes_of(self, val: Val) -> list:
        return [k for k in (self.index.lookup_class(name) for name in val.classes) if k is not None]

    def module_origin(self, expr: ast.expr) -> tuple[str, str] | None:
        """(nn.Module class, attribute) when ``expr`` is read through the attributes of an nn.Module
        object (``self.holder.cache``, ``self.layers[0]``, a local bound to ``self._state``, or
        ``self`` of a method called on such an object), else None.

        Dynamo marks every tensor whose source starts at an nn.Module as a static input, however
        many plain objects lie in between; what an argument of the compiled call holds is not.
        """
        node = expr
        while True:
            origin = self.kind_of(node).origin
            if origin is not None and self._is_module(self.index.lookup_class(origin[0])):
                return origin
            if not isinstance(node, (ast.Attribute, ast.Subscript)):
                return None
            read, node = node, node.value
            owner = self.class_of(self.kind_of(node))
            if self._is_module(owner):
                return (owner.qualname, read.attr if isinstance(read, ast.Attribute) else "")

    def _is_module(self, klass) -> bool:
        return klass is not None and self.index.is_nn_module(klass)

    def attr_val(self, owner: Val, attr: str) -> Val:
        klasses = self.classes_of(owner)
        if not klasses:
            if owner.value == TENSOR_VALUE:
                return Val(TENSOR_VALUE) if attr in TENSOR_ATTRS else NOTHING
            if owner.value == DICT and owner.origin is not None:  # `self.transformer.h`: a ModuleDict's entry
                return self._module_dict_entry(owner.origin, attr)
            return NOTHING
        out = None
        for klass in klasses:
            out = join(out, self._attr_of_class(klass, attr))
        if owner.fresh and out is not None:  # part of an object this call created
            out = replace(out, fresh=True)
        return out

    def _module_dict_entry(self, origin: tuple[str, str], key: str) -> Val:
        klass = self.index.lookup_class(origin[0])
        found = self.index.attr(klass, origin[1]) if klass is not None else None
        entry = dict(found.fields).get(key) if found is not None and found.fields else None
        if entry is None:
            return NOTHING
        return self._val_of_kind(entry, origin)  # state of the ModuleDict attribute itself

    def _attr_of_class(self, klass, attr: str) -> Val:
        found = self.index.attr(klass, attr)
        origin = (klass.qualname, attr)
        if found is None:
            method = self.index.find_method(klass, attr)
            if method is not None:  # `self.method` used as a value: a bound method
                return Val(func=(method.qualname, klass.qualname, 0, ()), origin=origin)
            return Val(origin=origin)
        if found.kind in TENSOR_KINDS or found.kind in (LIST, DICT):
            return self._val_of_kind(found, origin)
        if found.kind == INT and self.index.is_mutated_attr(klass, attr) or self.index.is_flipped_flag(klass, attr):
            return Val(INTSTATE, origin=origin)
        if found.typevar:
            bound = self.index.type_args(klass).get(found.typevar)
            if bound is not None:
                return Val(cls=bound, hier=True, origin=origin)
        return self._val_of_kind(found, origin)

    @staticmethod
    def _val_of_kind(found, origin: tuple[str, str]) -> Val:
        """The flow value of what the index says an attribute (or a ModuleDict entry) holds."""
        kind = found.kind
        if kind in TENSOR_KINDS:
            return Val(TENSOR_VALUE, origin=origin, boolean=found.boolean)
        if kind in (LIST, DICT):
            return Val(kind, origin=origin, elems=class_val(found.elems, found.elems_hier) if found.elems else None)
        if found.classes:
            val = class_val(found.classes, found.hier)
            return Val(cls=val.cls, alts=val.alts, hier=val.hier, origin=origin,
                       elems=class_val(found.elems, found.elems_hier) if found.elems else None)
        if found.elems:  # nn.Sequential of known blocks
            return Val(origin=origin, elems=class_val(found.elems, found.elems_hier))
        if found.func:
            return Val(func=(found.func, "", 0, ()), origin=origin)
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
            return self._global_val(node.id)
        if isinstance(node, ast.Attribute):
            if node.attr in SHAPE_ATTRS:
                return NOTHING
            return self.attr_val(self.kind_of(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return self._subscript_val(node)
        if isinstance(node, ast.Call):
            return self._call_val(node)
        if isinstance(node, ast.Compare):
            if all(isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for op in node.ops):
                return NOTHING
            val = NOTHING
            for part in (node.left, *node.comparators):
                val = join(val, value_only(self.kind_of(part)))
            if val.value == TENSOR_VALUE:
                return Val(TENSOR_VALUE, boolean=True)
            return Val(val.value) if val.value in (HOST, INTSTATE) else NOTHING
        if isinstance(node, ast.BinOp):
            left, right = self.kind_of(node.left), self.kind_of(node.right)
            val = join(value_only(left), value_only(right))
            if val.value == TENSOR_VALUE and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
                return Val(TENSOR_VALUE, boolean=left.boolean or right.boolean)
            return val
        if isinstance(node, ast.BoolOp):
            val = NOTHING
            for part in node.values:
                val = join(val, self.kind_of(part))
            return val
        if isinstance(node, ast.UnaryOp):
            inner = self.kind_of(node.operand)
            if isinstance(node.op, ast.Invert) and inner.boolean:
                return Val(TENSOR_VALUE, boolean=True)
            return value_only(inner)
        if isinstance(node, ast.IfExp):
            return join(self.kind_of(node.body), self.kind_of(node.orelse))
        if isinstance(node, ast.Tuple):
            return Val(items=tuple(self.kind_of(e) for e in node.elts))
        if isinstance(node, (ast.List, ast.ListComp)):
            elts = [node.elt] if isinstance(node, ast.ListComp) else node.elts
            elems = None
            for elt in elts[:16]:
                val = self.kind_of(elt)
                if val.classes or val.value == TENSOR_VALUE:
                    elems = join(elems, val)
            return Val(LIST, elems=elems)
        if isinstance(node, ast.Dict):
            return Val(DICT)
        if isinstance(node, ast.Starred):
            return self.kind_of(node.value)
        if isinstance(node, ast.NamedExpr):
            val = self.kind_of(node.value)
            self.env[node.target.id] = val
            return val
        return NOTHING

    def _global_val(self, name: str) -> Val:
        """A name not bound in this function: a project function (a callable value) or unknown."""
        found = self.index.lookup(self.module.resolve(name))
        if found is not None and not hasattr(found, "methods"):
            return Val(func=(found.qualname, "", 0, ()))
        return NOTHING

    def _subscript_val(self, node: ast.Subscript) -> Val:
        base = self.kind_of(node.value)
        if base.value == TENSOR_VALUE:
            return Val(TENSOR_VALUE, origin=base.origin)
        if base.items is not None and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
            if -len(base.items) <= node.slice.value < len(base.items):
                return base.items[node.slice.value]
        if base.elems is not None:
            if isinstance(node.slice, ast.Slice):
                return Val(base.value or LIST, elems=base.elems)
            return base.elems
        return self.returns_of(self.resolve_call(node))

    def returns_of(self, targets) -> Val:
        val = NOTHING
        for target in targets:
            if target.constructs:
                val = join(val, Val(cls=target.constructs, fresh=True))
            else:
                val = join(val, self.engine.summary(target))
        return val

    _returns_of = returns_of  # the name the rules used before the rule context existed

    def _iterated(self, it: Val) -> Val:
        """The value of one element when iterating over ``it``."""
        if it.value == TENSOR_VALUE:
            return Val(TENSOR_VALUE)
        return it.elems or NOTHING

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
                boolean = method in BOOL_METHODS or (method == "to" and any(
                    _is_bool_dtype(a, self.module) for a in [*call.args, *(k.value for k in call.keywords)]))
                if method in ("clone", "detach", "contiguous", "view", "reshape", "expand", "flatten", "squeeze",
                              "unsqueeze", "transpose", "permute", "__getitem__"):
                    boolean = recv.boolean
                return Val(TENSOR_VALUE, boolean=boolean)
            if recv.value == DICT and method in ("values", "items"):
                elems = recv.elems if method == "values" else (Val(items=(NOTHING, recv.elems)) if recv.elems else None)
                return Val(LIST, elems=elems)
            if method in TENSORISH_METHODS and recv.value is None and not recv.classes and not recv.func \
                    and not self.resolve_call(call):
                return Val(TENSOR_VALUE, boolean=method in BOOL_METHODS)
        if resolved in ("int", "float", "bool", "complex"):
            arg = value_only(self.kind_of(call.args[0])) if call.args else NOTHING
            return Val(HOST) if arg.value in (TENSOR_VALUE, HOST) else arg
        if resolved in ("max", "min", "abs", "round", "sum"):
            val = NOTHING
            for arg in call.args:
                val = join(val, value_only(self.kind_of(arg)))
            return Val(HOST) if val.value == TENSOR_VALUE and resolved != "sum" else val
        if resolved == "getattr" and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) \
                and isinstance(call.args[1].value, str):
            return self.attr_val(self.kind_of(call.args[0]), call.args[1].value)
        if resolved in COPIES and call.args:  # a copy this call made: writing into it mutates no input
            return _fresh(self.kind_of(call.args[0]), deep=resolved == "copy.deepcopy")
        if resolved in IDENTITY_ITERATORS and call.args:
            inner = self.kind_of(call.args[0])
            return inner if (inner.elems or inner.value == TENSOR_VALUE) else NOTHING
        if resolved == "enumerate" and call.args:
            return Val(LIST, elems=Val(items=(NOTHING, self._iterated(self.kind_of(call.args[0])))))
        if resolved == "zip":
            return Val(LIST, elems=Val(items=tuple(self._iterated(self.kind_of(a)) for a in call.args)))
        if resolved in PARTIAL and call.args:
            target = self.kind_of(call.args[0])
            if target.func:
                qual, self_cls, bound, kws = target.func
                return Val(func=(qual, self_cls, bound + len(call.args) - 1,
                                 tuple(sorted({*kws, *(k.arg for k in call.keywords if k.arg)}))))
            return NOTHING
        if resolved in ("len", "isinstance", "hasattr", "getattr", "callable", "type", "id", "str", "repr"):
            return NOTHING
        if resolved.startswith("torch."):
            if not torch_call_is_tensor(resolved):
                return NOTHING
            boolean = resolved in BOOL_FUNCTIONS or any(
                k.arg == "dtype" and _is_bool_dtype(k.value, self.module) for k in call.keywords)
            return Val(TENSOR_VALUE, boolean=boolean)
        if resolved.startswith("einops."):
            return Val(TENSOR_VALUE)
        targets = self.resolve_call(call)
        if targets:
            return self.returns_of(targets)
        return NOTHING
