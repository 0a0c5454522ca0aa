"""What a rule sees: one statement of one compiled function, in the context that reaches it.

Rules get a :class:`RuleContext`, never the analyzer itself. It answers four questions:

* ``ctx.nodes(ast.Call, ...)``: the nodes of those types that the statement evaluates itself
  (not those of nested blocks; cached per statement);
* ``ctx.value(expr)``: what an expression is here (:class:`~flake8_compile_safe.values.Val`:
  tensor, boolean mask, host number, mutable int, container, project object, callable);
* ``ctx.targets(call)`` / ``ctx.returns(call)``: the project functions a call runs, and what
  they return in this context;
* ``ctx.state(expr)``: the persistent state an expression refers to (:class:`State`): an
  attribute of an object that outlives the call, a module global, a closure variable; None
  for locals and for objects this call created itself.

plus ``ctx.resolve(name)`` (a name as written in the module, fully qualified), ``ctx.func``,
``ctx.module``, ``ctx.index`` and a few index questions (``is_module_class``,
``is_static``, ``attribute``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..values import DICT, LIST, NOTHING, TENSOR_KINDS, TENSOR_VALUE, Val, dotted


@dataclass(frozen=True)
class State:
    """Persistent state an expression refers to."""

    label: str  # "KVCache._keys", "cache.pos", "global STORE", "closure variable saved"
    klass: object  # ClassInfo holding the attribute, or None
    attr: str | None  # attribute (or variable) name
    kind: str | None  # index-time kind: tensor, buffer, parameter, list, dict, int, module, or None
    scope: str  # "attribute", "argument", "global", "closure"

    @property
    def is_tensor(self) -> bool:
        return self.kind in TENSOR_KINDS


class RuleContext:
    def __init__(self, analyzer, stmt: ast.stmt):
        self._an = analyzer
        self.stmt = stmt
        self.func = analyzer.func
        self.module = analyzer.module
        self.index = analyzer.index
        self.self_cls = analyzer.ctx.self_cls
        self._nodes = None

    # -- the statement -------------------------------------------------------------------------
    def nodes(self, *types: type) -> list[ast.AST]:
        found = self._nodes  # every rule asks: fetch the statement's buckets once
        if found is None:
            found = self._nodes = self._an.nodes(self.stmt)
        if len(types) == 1:
            return found.by_type.get(types[0], [])
        return found.of(*types)

    # -- values --------------------------------------------------------------------------------
    def value(self, expr: ast.expr | None) -> Val:
        return self._an.kind_of(expr) if expr is not None else NOTHING

    def targets(self, call: ast.AST) -> list:
        return self._an.resolve_call(call)

    def returns(self, call: ast.AST) -> Val:
        return self._an.returns_of(self._an.resolve_call(call))

    def resolve(self, name: str) -> str:
        return self.module.resolve(name)

    def resolve_callee(self, call: ast.Call) -> str:
        """The qualified name a call's function is written as (``torch.nonzero``), or ""."""
        name = dotted(call.func)
        if not name or name.partition(".")[0] in self._an.env:
            return ""
        return self.module.resolve(name)

    def class_of(self, val: Val):
        return self._an.class_of(val)

    def is_param(self, name: str) -> bool:
        return name in {p.arg for p in self.func.params}

    def is_local(self, name: str) -> bool:
        return name in self._an.local_names()

    # -- index questions -----------------------------------------------------------------------
    def is_module_class(self, klass) -> bool:
        return klass is not None and self.index.is_nn_module(klass)

    def is_static(self, state: State) -> bool:
        if state.klass is None or state.attr is None:
            return False
        return self.index.is_static_attr(state.klass, state.attr)

    def attribute(self, klass, attr: str):
        """What the index knows of ``klass.attr`` (a StaticKind), or None."""
        return self.index.attr(klass, attr)

    # -- state ---------------------------------------------------------------------------------
    def state(self, expr: ast.expr) -> State | None:
        """The persistent state ``expr`` refers to, or None (a local, a fresh object, unknown)."""
        if isinstance(expr, ast.Name):
            return self._name_state(expr.id)
        if not isinstance(expr, ast.Attribute):
            return None
        owner = self.value(expr.value)
        if owner.fresh:
            return None  # an object this compiled call created: not an input, nothing is mutated
        klass = self.class_of(owner)
        if klass is not None:
            return State(f"{klass.name}.{expr.attr}", klass, expr.attr, self.index.attr_kind(klass, expr.attr),
                         "attribute")
        if isinstance(expr.value, ast.Name) and self.is_param(expr.value.id):
            return State(f"{expr.value.id}.{expr.attr}", None, expr.attr, None, "argument")
        return None

    def _name_state(self, name: str) -> State | None:
        bound = self._an.env.get(name)
        if bound is not None and bound.origin and not bound.fresh:
            klass = self.index.lookup_class(bound.origin[0])
            attr = bound.origin[1]
            if klass is not None:
                return State(f"{klass.name}.{attr}", klass, attr, self.index.attr_kind(klass, attr), "attribute")
        if self.is_local(name):
            return None
        if name in self.module.global_kinds:
            return State(f"module global {name}", None, name, self.module.global_kinds[name].kind, "global")
        parent = self.func.parent
        while parent is not None:
            if name in self._an.engine.local_names(parent):
                return State(f"closure variable {name}", None, name, self._closure_kind(parent, name), "closure")
            parent = parent.parent
        return None

    def _closure_kind(self, parent, name: str) -> str | None:
        """The kind an enclosing function assigns to ``name`` (``saved = {}``, ``saved = self.saved``)."""
        for node in ast.walk(parent.node):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                value = node.value
                if (isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                        and parent.cls is not None and value.value.id == "self"):
                    return self.index.attr_kind(parent.cls, value.attr)
                kind = self.index.kinds.assigned(parent.module, value, {}, None).kind
                if kind:
                    return kind
        return None


def is_tensor_value(val: Val) -> bool:
    return val.value == TENSOR_VALUE


__all__ = ["RuleContext", "State", "is_tensor_value", "LIST", "DICT"]
