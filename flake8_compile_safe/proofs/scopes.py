"""The nodes and name bindings of one function's own scope (nested scopes left out)."""

from __future__ import annotations

import ast
import weakref

from ..astwalk import child_nodes


# Keyed by the def node: an entry goes with its tree (a released index frees both).
_SCOPES: "weakref.WeakKeyDictionary[ast.AST, list[ast.AST]]" = weakref.WeakKeyDictionary()
_NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
               ast.DictComp, ast.GeneratorExp)


def scope_nodes(func: ast.AST) -> list[ast.AST]:
    """Every node of ``func``'s own scope (not nested functions, classes, lambdas, comprehensions).

    Computed once per def (the rules ask for the same function's nodes again and again); the
    order is that of a depth-first walk, last child first.
    """
    if not isinstance(func, ast.AST):
        return _scope_nodes(func)  # fails as ast.iter_child_nodes would (AttributeError)
    found = _SCOPES.get(func)
    if found is None:
        found = _SCOPES[func] = _scope_nodes(func)
    return found


def _scope_nodes(func: ast.AST) -> list[ast.AST]:
    out = []
    stack = child_nodes(func)
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, _NEW_SCOPES):
            stack.extend(child_nodes(node))
    return out


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
