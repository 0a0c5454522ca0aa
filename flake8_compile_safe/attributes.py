"""What each attribute of a project class holds, read from every method's assignments to ``self``.

Per attribute: its kind (tensor, buffer, parameter, submodule, list, dict, int), the project
classes it may hold (``self.rope = rope`` with ``rope: Optional[Rope]``), the classes of its
elements (``self.layers = nn.ModuleList([Block(c) for c in cfgs])``, ``list[CacheLayer]``,
``self.layers.append(Layer())``), the function it holds (``self.fn = helper``,
``functools.partial(helper, ...)``, ``self.fn = self._method``), which literals are assigned to
it (flags that flip), what code outside compiled methods sets it to (``__init__``, class body),
and whether ``torch._dynamo.mark_static_address`` marks it, directly or through a local
(``t = torch.zeros(n); mark_static_address(t); self.states.append(t)``).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from .values import (
    BUFFER, INIT_METHODS, INT, LIST, DICT, MODULE, NONE, PARAMETER, TENSOR, StaticKind, dotted,
)

if TYPE_CHECKING:
    from .project import ClassInfo, ProjectIndex

RANK = {None: 0, NONE: 0, INT: 1, LIST: 2, DICT: 2, MODULE: 2, TENSOR: 3, BUFFER: 4, PARAMETER: 4}
CONTAINER_ADDERS = {"append", "extend", "insert", "add", "appendleft"}


def _merge(old: StaticKind | None, new: StaticKind) -> StaticKind:
    if old is None:
        return new
    kind = new.kind if RANK.get(new.kind, 0) > RANK.get(old.kind, 0) else old.kind
    classes = tuple(dict.fromkeys((*old.classes, *new.classes)))[:8]
    elems = tuple(dict.fromkeys((*old.elems, *new.elems)))[:8]
    return StaticKind(kind, classes, old.hier or new.hier, elems, old.elems_hier or new.elems_hier,
                      old.func or new.func, old.boolean and new.boolean, typevar=old.typevar or new.typevar,
                      external=old.external or new.external)


class AttributeCollector:
    def __init__(self, index: "ProjectIndex"):
        self.index = index
        self.kinds = index.kinds

    def collect(self, klass: "ClassInfo") -> None:
        module = klass.module
        for item in klass.node.body:  # class-level annotations (dataclass fields) and assignments
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                kind = self.kinds.annotation(module, item.annotation)
                if item.value is not None and not _is_field_call(item.value, module):
                    value_kind = self.kinds.assigned(module, item.value, {}, None)
                    kind = _merge(kind, value_kind) if value_kind.kind != NONE else kind
                    klass.init_kinds[item.target.id] = value_kind.kind
                    self._note_constant(klass, item.target.id, value_kind)
                else:  # a dataclass field is set by the generated __init__; elsewhere, a declaration
                    klass.init_kinds[item.target.id] = kind.kind if klass.is_dataclass else None
                self._note(klass, item.target.id, kind)
            elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                klass.class_constants[item.targets[0].id] = item.value
                value_kind = self.kinds.assigned(module, item.value, {}, None)
                klass.init_kinds.setdefault(item.targets[0].id, value_kind.kind)
                self._note_constant(klass, item.targets[0].id, value_kind)
        for method in klass.methods.values():
            self._collect_method(klass, method)

    def _collect_method(self, klass, method) -> None:
        module = klass.module
        params = method.params
        self_name = params[0].arg if params and "staticmethod" not in method.decorator_names() else None
        param_annotations = {a.arg: a.annotation for a in params if a.annotation is not None}
        in_init = method.name in INIT_METHODS
        static_locals: set[str] = set()
        loops: dict[int, ast.expr] = {}  # id of a call in a loop body on the loop variable -> what the loop iterates
        for node in iter_method_statements(method.node.body):
            if isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
                for inner in (n for st in node.body for n in ast.walk(st)):
                    if (isinstance(inner, ast.Call) and inner.args and isinstance(inner.args[0], ast.Name)
                            and inner.args[0].id == node.target.id):
                        loops[id(inner)] = node.iter
            if isinstance(node, ast.Expr):
                node = node.value  # self.register_buffer(...), mark_static_address(...)
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = None if isinstance(node, ast.AugAssign) else node.value
                for target in targets:
                    for elt in (target.elts if isinstance(target, ast.Tuple) else [target]):
                        attr = _self_attr(elt, self_name)
                        if attr is not None:
                            self._assignment(klass, attr, node, value, param_annotations, self_name, in_init,
                                             static_locals)
                        elif (isinstance(elt, ast.Subscript) and _self_attr(elt.value, self_name)
                              and isinstance(value, ast.Name) and value.id in static_locals):
                            klass.static_attrs.add(_self_attr(elt.value, self_name))
            elif isinstance(node, ast.Call):
                self._call(klass, node, module, param_annotations, self_name, static_locals, loops)

    def _assignment(self, klass, attr, node, value, param_annotations, self_name, in_init, static_locals):
        module = klass.module
        kind = self.kinds.annotation(module, node.annotation) if isinstance(node, ast.AnnAssign) else StaticKind()
        if value is not None:
            value_kind = self.kinds.assigned(module, value, param_annotations, self_name)
            if value_kind.func and value_kind.func.startswith("self."):
                method = self.index.find_method(klass, value_kind.func[5:])
                value_kind = replace(value_kind, func=method.qualname if method else None)
            if value_kind.kind != NONE or kind.kind is None:
                kind = _merge(kind, value_kind) if kind.kind or kind.classes else value_kind
            self._note_constant(klass, attr, value_kind)
            if isinstance(value, ast.Name) and value.id in static_locals:
                klass.static_attrs.add(attr)
            if isinstance(value, (ast.List, ast.Tuple)) and any(
                    isinstance(e, ast.Name) and e.id in static_locals for e in value.elts):
                klass.static_attrs.add(attr)
            if in_init:
                klass.init_kinds.setdefault(attr, value_kind.kind)
        else:  # augmented assignment: a counter
            klass.constants_assigned.setdefault(attr, set()).add(("aug",))
        self._note(klass, attr, kind)
        klass.instance_attrs.add(attr)
        if not in_init:
            klass.mutated_attrs.add(attr)

    def _call(self, klass, node: ast.Call, module, param_annotations, self_name, static_locals, loops) -> None:
        callee = dotted(node.func)
        resolved = module.resolve(callee) if callee else ""
        name = callee.rsplit(".", 1)[-1] if callee else ""
        literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if name in ("register_buffer", "register_parameter") and isinstance(literal, str):
            self._note(klass, literal, StaticKind(BUFFER if name == "register_buffer" else PARAMETER))
            klass.init_kinds.setdefault(literal, BUFFER)
        elif resolved.endswith("mark_static_address") and node.args:
            marked = node.args[0]
            attr = _self_attr(marked, self_name)
            if attr is not None:
                klass.static_attrs.add(attr)
            elif isinstance(marked, ast.Attribute):
                self.index.globally_static_attrs.add(marked.attr)
            elif isinstance(marked, ast.Name):
                static_locals.add(marked.id)
                if id(node) in loops:  # for t in (*self.keys, *self.values): mark_static_address(t)
                    self._mark_iterated(klass, loops[id(node)], self_name, static_locals)
        elif (callee == "setattr" and len(node.args) == 3 and _is_self(node.args[0], self_name)
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            kind = self.kinds.assigned(module, node.args[2], param_annotations, self_name)
            self._note(klass, node.args[1].value, kind)
        elif isinstance(node.func, ast.Attribute) and node.func.attr in CONTAINER_ADDERS:
            attr = _self_attr(node.func.value, self_name)
            if attr is not None and node.args:
                added = node.args[-1]
                if isinstance(added, ast.Name) and added.id in static_locals:
                    klass.static_attrs.add(attr)
                kind = self.kinds.assigned(module, added, param_annotations, self_name)
                if kind.classes:
                    self._note(klass, attr, StaticKind(elems=kind.classes))

    @staticmethod
    def _mark_iterated(klass, iterable: ast.expr, self_name, static_locals: set[str]) -> None:
        """Every element of ``iterable`` is marked static: the containers it names hold static tensors."""
        parts = iterable.elts if isinstance(iterable, (ast.Tuple, ast.List)) else [iterable]
        for part in parts:
            if isinstance(part, ast.Starred):
                part = part.value
            if (isinstance(part, ast.Call) and isinstance(part.func, ast.Attribute) and not part.args
                    and part.func.attr == "values"):
                part = part.func.value  # for t in self.buffers.values()
            attr = _self_attr(part, self_name)
            if attr is not None:
                klass.static_attrs.add(attr)
            elif isinstance(part, ast.Name):
                static_locals.add(part.id)  # a local list, stored on self afterwards

    def _note(self, klass, attr: str, kind: StaticKind) -> None:
        old = klass.attrs.get(attr)
        if old is not None and old.kind in (BUFFER, PARAMETER) and kind.kind not in (BUFFER, PARAMETER):
            kind = replace(kind, kind=old.kind)
        klass.attrs[attr] = _merge(old, kind) if old is not None else kind

    @staticmethod
    def _note_constant(klass, attr: str, kind: StaticKind) -> None:
        entry = klass.constants_assigned.setdefault(attr, set())
        entry.add(("const", repr(kind.constant)) if kind.is_constant else ("expr",))


def iter_method_statements(body):
    """Statements of a method, nested blocks included, nested function bodies not."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(stmt, name, None)
            if block:
                stack.extend(reversed(block))


def _is_self(node, self_name) -> bool:
    return self_name is not None and isinstance(node, ast.Name) and node.id == self_name


def _self_attr(node, self_name) -> str | None:
    if isinstance(node, ast.Attribute) and _is_self(node.value, self_name):
        return node.attr
    return None


def _is_field_call(value, module) -> bool:
    callee = dotted(value.func) if isinstance(value, ast.Call) else None
    return bool(callee) and module.resolve(callee).split(".")[-1] == "field"
