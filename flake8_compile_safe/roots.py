"""Stage 3, find compiled roots: the functions ``torch.compile`` (directly or via nn.Module) runs."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .astwalk import child_nodes
from .project import ClassInfo, FunctionInfo, ModuleInfo, ProjectIndex, dotted

COMPILE_FUNCS = {"torch.compile"}
# Hooks run inside the hooked module's (compiled) __call__: dynamo traces them with its forward.
HOOK_METHODS = {"register_forward_hook", "register_forward_pre_hook"}
GLOBAL_HOOKS = {"torch.nn.modules.module.register_module_forward_hook",
                "torch.nn.modules.module.register_module_forward_pre_hook"}
PARTIAL = {"functools.partial"}
DISABLE_DECORATORS = {"torch.compiler.disable", "torch._dynamo.disable", "torch.compiler.disable_for_tracing"}


@dataclass(frozen=True, eq=False)
class Root:
    func: FunctionInfo
    self_cls: ClassInfo | None  # the class `self` is: a subclass that inherits `func` gets its own root
    why: str  # "nn.Module.forward", "@torch.compile", "torch.compile(...) call", "forward hook", "--compile-safe-roots"

    @property
    def display(self) -> str:
        if self.self_cls is not None:
            return f"{self.self_cls.name}.{self.func.name}"
        return self.func.display

    @property
    def key(self) -> tuple[str, str]:
        return self.func.qualname, self.self_cls.qualname if self.self_cls else ""


def is_disabled(func: FunctionInfo) -> bool:
    return any(name in DISABLE_DECORATORS for name in func.decorator_names())


def find_roots(index: ProjectIndex, extra: tuple[str, ...] = ()) -> list[Root]:
    roots: dict[tuple[str, str], Root] = {}

    def add(func: FunctionInfo | None, self_cls: ClassInfo | None, why: str) -> None:
        if func is None or is_disabled(func):
            return
        if self_cls is None and func.cls is not None:
            self_cls = func.cls
        root = Root(func, self_cls, why)
        roots.setdefault(root.key, root)

    for klass in index.classes():
        if index.is_nn_module(klass):
            forward = index.find_method(klass, "forward")
            if forward is not None:
                add(forward, klass, "nn.Module.forward")
    for func in index.functions():
        if any(name in COMPILE_FUNCS for name in func.decorator_names()):
            add(func, None, "@torch.compile")
    for module in index.modules.values():
        if not module.mentions_compile:
            continue
        for call, cls, func in _compile_calls(module):
            for target, self_cls in _resolve_compile_target(index, module, call, cls, func):
                add(target, self_cls, "torch.compile(...) call")
    for module in index.modules.values():
        if module.mentions_hooks:
            for func, self_cls in _hook_functions(index, module):
                add(func, self_cls, "forward hook")
    for name in extra:
        for func, self_cls in _resolve_extra_root(index, name):
            add(func, self_cls, "--compile-safe-roots")
    # A base class whose forward project subclasses inherit is reported through the subclasses:
    # their class constants decide branches (attention_axis == TIME) the base cannot.
    inherited = {r.func.qualname for r in roots.values() if r.self_cls is not None and r.func.cls is not None
                 and r.self_cls.qualname != r.func.cls.qualname}
    kept = [r for r in roots.values()
            if not (r.why == "nn.Module.forward" and r.self_cls is r.func.cls and r.func.qualname in inherited)]
    return sorted(kept, key=lambda r: (r.func.module.name, r.func.lineno, r.display))


def _compile_calls(module: ModuleInfo):
    """Yield (call, enclosing class, enclosing function) for each ``torch.compile(x)``."""

    def visit(node, cls, func):
        for child in child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, module.classes.get(child.name) if cls is None else cls, func)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info = cls.methods.get(child.name) if cls else module.functions.get(child.name)
                visit(child, cls, info or func)
            else:
                if isinstance(child, ast.Call):
                    name = dotted(child.func)
                    if name and module.resolve(name) in COMPILE_FUNCS and child.args:
                        yield_list.append((child, cls, func))
                visit(child, cls, func)

    yield_list: list = []
    visit(module.tree, None, None)
    return yield_list


def _scopes(module: ModuleInfo):
    """(class or None, function or None, statements) for the module body and every function in it."""
    yield None, None, module.tree.body
    for func in module.functions.values():
        yield None, func, func.node.body
    for klass in module.classes.values():
        for func in klass.methods.values():
            yield klass, func, func.node.body


def _hook_functions(index: ProjectIndex, module: ModuleInfo):
    """Functions registered as forward hooks or pre-hooks (``m.register_forward_hook(fn)``).

    A hook may be a module-level function, a method (``self.hook``), ``functools.partial`` of
    one, or a closure defined (at any depth) inside the function that registers it; a closure's
    enclosing function is its ``parent`` (what it closes over is state).
    """
    for klass, func, body in _scopes(module):
        nested, calls = {}, []
        for stmt in body:
            if func is None and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue  # module-level defs are scopes of their own
            for node in ast.walk(stmt):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and func is not None:
                    nested.setdefault(node.name, node)
                elif isinstance(node, ast.Call) and node.args and _is_hook_registration(node, module):
                    calls.append(node)
        for call in calls:
            hook = call.args[0]
            if isinstance(hook, ast.Call) and module.resolve(dotted(hook.func) or "") in PARTIAL and hook.args:
                hook = hook.args[0]
            if isinstance(hook, ast.Name):
                if hook.id in nested:
                    node = nested[hook.id]
                    # registered on the module, so its summary keeps what is derived from it (no parse later)
                    yield module.nested_def(f"{func.qualname}.<locals>.{node.name}", node, func), None
                    continue
                found = index.lookup(module.resolve(hook.id))
                if isinstance(found, FunctionInfo):
                    yield found, found.cls
            elif (isinstance(hook, ast.Attribute) and isinstance(hook.value, ast.Name) and hook.value.id == "self"
                  and klass is not None):
                method = index.find_method(klass, hook.attr)
                if method is not None:
                    yield method, klass


def _is_hook_registration(call: ast.Call, module: ModuleInfo) -> bool:
    if isinstance(call.func, ast.Attribute) and call.func.attr in HOOK_METHODS:
        return True
    name = dotted(call.func)
    return bool(name) and module.resolve(name) in GLOBAL_HOOKS


def _class_of_local(index: ProjectIndex, module: ModuleInfo, func: FunctionInfo | None, name: str):
    """The class of ``name`` inside ``func``: a constructor call or an annotation."""
    if func is None:
        scope = module.tree
    else:
        for param in func.params:
            if param.arg == name and param.annotation is not None:
                _, qual = index.annotation_kind(module, param.annotation)
                if qual:
                    return index.lookup_class(qual)
        scope = func.node
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                callee = dotted(node.value.func)
                klass = index.lookup_class(module.resolve(callee)) if callee else None
                if klass:
                    return klass
    return None


def _resolve_compile_target(index, module, call, cls, func):
    """What ``torch.compile(target)`` compiles: a function, a method, or a module's forward."""
    target = call.args[0]
    found = []
    if isinstance(target, ast.Name):
        resolved = index.lookup(module.resolve(target.id))
        if isinstance(resolved, FunctionInfo):
            found.append((resolved, resolved.cls))
        elif isinstance(resolved, ClassInfo):
            found.append((index.find_method(resolved, "forward"), resolved))
        else:
            klass = _class_of_local(index, module, func, target.id)
            if klass:
                found.append((index.find_method(klass, "forward"), klass))
    elif isinstance(target, ast.Attribute):
        owner = _resolve_object(index, module, target.value, cls, func)
        if owner is not None:
            method = index.find_method(owner, target.attr)
            if method is not None:
                found.append((method, owner))
            else:  # torch.compile(self.model): an attribute holding a module
                attr_cls = index.attr_type(owner, target.attr)
                if attr_cls:
                    found.append((index.find_method(attr_cls, "forward"), attr_cls))
    return [(f, c) for f, c in found if f is not None]


def _resolve_object(index, module, node, cls, func) -> ClassInfo | None:
    if isinstance(node, ast.Name):
        if node.id == "self" and cls is not None:
            return cls
        resolved = index.lookup_class(module.resolve(node.id))
        if resolved:
            return resolved
        return _class_of_local(index, module, func, node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve_object(index, module, node.value, cls, func)
        if owner is not None:
            return index.attr_type(owner, node.attr)
    return None


def _resolve_extra_root(index: ProjectIndex, name: str):
    """``pkg.mod.Class.method``, ``pkg.mod.func``, or a suffix such as ``Class.method``."""
    exact = index.lookup(name)
    if isinstance(exact, FunctionInfo):
        return [(exact, exact.cls)]
    if isinstance(exact, ClassInfo):
        return [(index.find_method(exact, "forward"), exact)]
    matches = []
    for func in index.functions():
        if func.qualname.endswith("." + name) or func.qualname == name:
            matches.append((func, func.cls))
    return matches
