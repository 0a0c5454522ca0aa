"""Objects' state across the project: owner classes, initialisers, attribute uses through other objects."""

from __future__ import annotations

import ast
import weakref

from ..fixdata import OwnerClass
from ..project import INIT_METHODS, ClassInfo, ProjectIndex


def owner_class(klass: ClassInfo, index: ProjectIndex) -> OwnerClass:
    return OwnerClass(str(klass.module.path), klass.qualname, klass.name, klass.node.lineno, index.is_nn_module(klass))


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
