"""Digests of what a module tells the rest of the index, and stable names for functions.

Two digests per module decide how much of a warm run can be reused:

* ``interface_digest``: what other modules' index passes read of this one (its name, imports,
  classes with bases and method names and signatures, functions with signatures, TypeVars,
  loggers, whether it mentions ``torch.compile`` or hooks). Line numbers are left out, so an
  edit inside a body keeps it. When it changes, the whole index is rebuilt (a cold run).
* ``facts_digest``: the interface plus what the attribute pass found (attribute kinds, constants,
  static marks, global kinds). When it changes, the index is reused but every reached function
  is analysed again (the rules read these facts for any class).

A body-only edit changes neither: then only the functions whose analysis read the edited file
are analysed again (:mod:`.incremental`).
"""

from __future__ import annotations

import ast

from .cache import digest
from .model import ClassInfo, FunctionInfo, ModuleInfo


def _signature(func: FunctionInfo) -> str:
    node = func.node
    if node is None:
        return ""
    params = func.args_source()
    if params is None:
        params = ast.dump(node.args)
    return params + "->" + (ast.dump(node.returns) if node.returns is not None else "")


def _class_header(klass: ClassInfo) -> str:
    node = klass.node
    return repr([[ast.dump(part) for part in parts] for parts in (node.bases, node.keywords, node.decorator_list)])


def interface_digest(module: ModuleInfo) -> str:
    functions = [(f.qualname, f.decorators, _signature(f)) for f in module.functions.values()]
    classes = [(k.qualname, tuple(k.bases), k.is_dataclass, _class_header(k),
                [(m.qualname, m.decorators, _signature(m)) for m in k.methods.values()])
               for k in module.classes.values()]
    return digest(module.name, str(module.path), sorted(module.imports.items()), functions, classes,
                  sorted(module.typevars.items(), key=repr), sorted(module.loggers),
                  module.mentions_compile, module.mentions_hooks)


def _sorted_repr(items) -> list[str]:
    return sorted(repr(item) for item in items)


def facts_digest(module: ModuleInfo, interface: str) -> str:
    classes = []
    for klass in module.classes.values():
        classes.append((klass.qualname, sorted((k, repr(v)) for k, v in klass.attrs.items()),
                        sorted((k, repr(v)) for k, v in klass.init_kinds.items()),
                        sorted(klass.static_attrs), sorted(klass.mutated_attrs), sorted(klass.instance_attrs),
                        sorted((k, _sorted_repr(v)) for k, v in klass.constants_assigned.items()),
                        sorted((k, ast.dump(v)) for k, v in klass.class_constants.items())))
    return digest(interface, classes, sorted((k, repr(v)) for k, v in module.global_kinds.items()),
                  sorted(module.static_marks))


def function_spec(func: FunctionInfo) -> tuple:
    """A name for ``func`` that survives a restart: module, qualname, position, enclosing function."""
    parent = function_spec(func.parent) if func.parent is not None else None
    return (func.module.name, func.qualname, func.lineno, func.col, parent)


def resolve_spec(index, spec: tuple) -> FunctionInfo | None:
    """The function a spec names in this run's index (by qualified name; nested ones by position)."""
    module_name, qualname, lineno, col, parent_spec = spec
    module = index.modules.get(module_name)
    if module is None:
        return None
    if parent_spec is None:
        for func in module.all_functions():
            if func.qualname == qualname:
                return func
        return None
    parent = resolve_spec(index, parent_spec)
    if parent is None:
        return None
    return module.function_at(qualname, lineno, col, parent)
