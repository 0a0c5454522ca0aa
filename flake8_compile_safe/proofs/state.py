"""Objects' state across the project: owner classes, initialisers, attribute uses through other objects."""

from __future__ import annotations

import weakref

from ..fixdata import OwnerClass
from ..model import QUERY_ANSWERS, note_query
from ..project import INIT_METHODS, ClassInfo, ProjectIndex


def owner_class(klass: ClassInfo, index: ProjectIndex) -> OwnerClass:
    return OwnerClass(str(klass.module.path), klass.qualname, klass.name, klass.node.lineno, index.is_nn_module(klass))


# ---------------------------------------------------------------------------------------------
# Project-wide attribute reads (for int counters)


class _ReadsByName(dict):
    """name -> [(path, line)]; the first read is what a message quotes, so asking for a name is
    a project-wide query whose answer an incremental run checks before replaying."""

    def get(self, name, default=None):
        found = super().get(name, default)
        note_query((READ_QUERY, name), found[0] if found else None)
        return found


READ_QUERY = "attribute read"


def _answer_read(index: ProjectIndex, name: str):
    found = dict.get(attribute_uses(index).non_self, name)
    return found[0] if found else None


QUERY_ANSWERS[READ_QUERY] = _answer_read


class AttributeUses:
    """Where each attribute name is read or written through something other than ``self``
    (the first place per file, from the index: no file is parsed for it)."""

    def __init__(self, index: ProjectIndex):
        self.non_self: dict[str, list[tuple[str, int]]] = _ReadsByName()
        for module in index.modules.values():
            for name, line in module.attribute_reads.items():
                self.non_self.setdefault(name, []).append((module.path_str, line))  # one string per file


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
