"""Which project functions a call may run (a mixin of the analyzer).

Edges, each stated generally:

* ``f(x)``, ``mod.f(x)``: a project function by its resolved name; ``Cls(...)``: its
  ``__init__`` / ``__post_init__`` (a constructor);
* ``obj.m(x)``: the method ``m`` on each class ``obj`` may be; when that class is a static type
  (an annotation: a base class, a Protocol, an ABC), also every override of ``m`` in the
  project's subclasses of it (class-hierarchy analysis);
* ``obj(x)``, ``self.sub(x)``, ``self.layers[i](x)``: ``forward`` (or ``__call__``) of the
  object's classes, overrides included for a static type;
* ``obj[i]``: ``__getitem__``; ``super().m(x)``: the next class in the MRO;
* callables as values: ``self.fn(x)`` with ``self.fn = helper`` or ``functools.partial(helper,
  a)``, a bound method (``f = self.m; f(x)``), ``getattr(self, "name")(x)``, a nested ``def``
  called in the function that defines it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .values import NOTHING, Val, dotted

MAX_TARGETS = 32  # per call site: a static type with more overrides than this is cut, not exploded


@dataclass(frozen=True)
class CallTarget:
    func: object  # FunctionInfo
    self_cls: object  # ClassInfo | None
    bindings: tuple[tuple[str, Val], ...]
    constructs: str | None = None  # class qualname when the call is a constructor


class CallResolver:
    """Call targets; expects ``self.index``, ``self.module``, ``self.func``, ``self.ctx``, ``kind_of``."""

    def resolve_call(self, node: ast.AST) -> list[CallTarget]:
        cached = self._call_cache.get(id(node))
        if cached is not None:
            return cached
        self._call_cache[id(node)] = []  # recursion guard
        targets = self._resolve(node)[:MAX_TARGETS]
        self._call_cache[id(node)] = targets
        return targets

    def _resolve(self, node: ast.AST) -> list[CallTarget]:
        if isinstance(node, ast.Subscript):  # obj[i] -> __getitem__
            recv = self.kind_of(node.value)
            return self._methods_of(recv, "__getitem__", [node.slice], [])
        call: ast.Call = node
        func = call.func
        if isinstance(func, ast.Attribute):
            recv_node = func.value
            if (isinstance(recv_node, ast.Call) and isinstance(recv_node.func, ast.Name)
                    and recv_node.func.id == "super" and self.func.cls is not None):
                return self._super_call(func.attr, call)
            recv = self.kind_of(recv_node)
            if recv.classes:
                found = self._methods_of(recv, func.attr, call.args, call.keywords,
                                         via_module=self.module_origin(recv_node))
                if found:
                    return found
                return self._call_value(self.attr_val(recv, func.attr), call)
            name = dotted(func)
            if name and name.partition(".")[0] not in self.env:
                found = self.index.lookup(self.module.resolve(name))
                if found is not None:
                    return self._named(found, call)
            return []
        if isinstance(func, ast.Name):
            local = self.env.get(func.id)
            if local is not None:
                return self._call_value(local, call)
            found = self.index.lookup(self.module.resolve(func.id))
            if found is not None:
                return self._named(found, call)
            nested = self.nested_function(func.id)
            if nested is not None:
                return [self._target(nested, None, call.args, call.keywords, bound=False)]
            return []
        return self._call_value(self.kind_of(func), call)

    def _named(self, found, call: ast.Call) -> list[CallTarget]:
        if hasattr(found, "methods"):  # a class: a constructor
            return self._constructor(found, call)
        return [self._target(found, found.cls, call.args, call.keywords, bound=False)]

    def _super_call(self, name: str, call: ast.Call) -> list[CallTarget]:
        klass = self.ctx.self_cls or self.func.cls
        mro = self.index.mro(klass)
        names = [m.qualname for m in mro]
        if self.func.cls.qualname not in names:
            return []
        for parent in mro[names.index(self.func.cls.qualname) + 1:]:
            if name in parent.methods:
                return [self._target(parent.methods[name], klass, call.args, call.keywords, bound=True)]
        return []

    def _methods_of(self, recv: Val, name: str, args, keywords, via_module=None) -> list[CallTarget]:
        """``recv.name(...)`` on each class ``recv`` may be, and the overrides of a static type.

        ``via_module``: the (nn.Module class, attribute) the receiver was read through, if any; the
        callee's ``self`` carries it (a ``self`` binding), so the state it writes is known static.
        """
        out = []
        for klass in self.classes_of(recv):
            method = self.index.find_method(klass, name)
            if method is not None:
                if "staticmethod" in method.decorator_names():
                    out.append(self._target(method, None, args, keywords, bound=False))
                else:
                    out.append(_reached_via(self._target(method, klass, args, keywords, bound=True), via_module))
            if recv.hier:
                for override in self.index.overrides(klass, name):
                    if method is None or override is not method:
                        out.append(_reached_via(self._target(override, override.cls, args, keywords, bound=True),
                                                via_module))
        return out

    def _call_value(self, val: Val, call: ast.Call) -> list[CallTarget]:
        """Calling a value: an object (its forward / __call__) or a callable (function, partial)."""
        if val.func:
            qualname, self_cls, bound, kws = val.func
            func = self.index.lookup_function(qualname)
            if func is None:
                return []
            klass = self.index.lookup_class(self_cls) if self_cls else None
            return [self._target(func, klass or func.cls, call.args, call.keywords,
                                 bound=klass is not None, skip=bound, skip_keywords=kws)]
        if val.classes:
            for name in ("forward", "__call__"):
                found = self._methods_of(val, name, call.args, call.keywords)
                if found:
                    return found
        return []

    def _constructor(self, klass, call: ast.Call) -> list[CallTarget]:
        targets = []
        for name in ("__init__", "__post_init__"):
            method = self.index.find_method(klass, name)
            if method is not None:
                args, keywords = (call.args, call.keywords) if name == "__init__" else ([], [])
                target = self._target(method, klass, args, keywords, bound=True)
                targets.append(CallTarget(target.func, target.self_cls, target.bindings, klass.qualname))
        if not targets:
            from .project import FunctionInfo

            targets.append(CallTarget(FunctionInfo("", "", None, klass.module), klass, (), klass.qualname))
        return targets

    def _target(self, func, self_cls, args, keywords, bound: bool, skip: int = 0,
                skip_keywords: tuple = ()) -> CallTarget:
        params = [*func.args.posonlyargs, *func.args.args]  # the signature, kept in the summary
        if bound and func.cls is not None and params:
            params = params[1:]
        params = [p for p in params[skip:] if p.arg not in skip_keywords]
        bindings = {}
        for param, arg in zip(params, args):
            if isinstance(arg, ast.Starred):
                break
            bindings[param.arg] = self.kind_of(arg)
        names = {p.arg for p in func.params}
        for keyword in keywords:
            if keyword.arg in names:
                bindings[keyword.arg] = self.kind_of(keyword.value)
        kept = tuple(sorted(((k, v) for k, v in bindings.items()
                             if v.value or v.classes or v.func or v.elems), key=lambda kv: kv[0]))
        return CallTarget(func, self_cls, kept)


SELF_BINDING = "self"  # a binding of this name: the receiver was read through an nn.Module (its origin)


def _reached_via(target: CallTarget, via_module) -> CallTarget:
    """``target`` with its ``self`` bound to the nn.Module origin it was reached through.

    Only receivers that are not modules themselves carry it (a module's own tensors are static
    anyway); its presence makes a separate context, so the same method called on an object passed
    in as an argument of the compiled call (not static) is analysed apart.
    """
    if via_module is None or target.self_cls is None or target.func.cls is None:
        return target
    bindings = dict(target.bindings)
    bindings[SELF_BINDING] = Val(cls=target.self_cls.qualname, origin=tuple(via_module))
    return CallTarget(target.func, target.self_cls, tuple(sorted(bindings.items(), key=lambda kv: kv[0])),
                      target.constructs)


__all__ = ["CallTarget", "CallResolver", "NOTHING"]
