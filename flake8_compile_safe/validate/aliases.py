"""The other names a closure variable's object goes by, so that dynamo's guards can be matched to it.

A hook's closure state is made in a factory and handed out: ``install_kv_cache_hooks`` (a speech
decoder's) defines ``save_to_cache``, which writes the closure dict ``cache``, and ``return cache, hooks``;
its caller stores it, ``self.kv_cache, self.hooks = model.install_kv_cache_hooks()``, and passes
it on, ``decoder(tokens, audio, kv_cache=self.kv_cache)``. The linter names the state by the
closure variable (``cache``); dynamo names it by the compiled frame's argument
(``not L['kv_cache']``). Dynamo's verdict confirms the finding only through that binding, which
this module follows the way the code spells it (validation only, never the linter):

1. the factory (the def around the hook) returns the variable, alone or at a place in a tuple;
2. a call of the factory (by its name) is assigned, and the target at that place is a name or an
   attribute: its name is an alias;
3. a keyword argument whose value is an alias (``kv_cache=self.kv_cache``) adds the keyword.

Only files that mention the factory's name are parsed. Nothing is guessed by shape.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ..project import iter_python_files
from ..proofs.scopes import scope_nodes

CLOSURE = "closure variable "


def closure_aliases(findings, root: str) -> dict[int, frozenset[str]]:
    """{id(finding): other names of its closure state} for the findings on closure state."""
    out: dict[int, frozenset[str]] = {}
    memo: dict[tuple[str, str, str], frozenset[str]] = {}
    sources: list[tuple[Path, str]] | None = None
    for finding in findings or ():
        label = (getattr(finding, "data", None) or {}).get("state", "")
        function = getattr(finding, "function", "") or ""
        if not label.startswith(CLOSURE) or ".<locals>." not in function:
            continue
        variable = label[len(CLOSURE):]
        factory = function.rsplit(".<locals>.", 1)[0]
        key = (str(finding.path), factory, variable)
        if key not in memo:
            if sources is None:
                sources = _sources(root)
            memo[key] = _aliases(Path(finding.path), factory.rsplit(".", 1)[-1], variable, sources)
        if memo[key]:
            out[id(finding)] = memo[key]
    return out


def _sources(root: str) -> list[tuple[Path, str]]:
    found = []
    for path in iter_python_files(Path(root)):
        try:
            found.append((path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return found


def _parse(text: str, path: Path):
    try:
        return ast.parse(text, str(path))
    except (SyntaxError, ValueError):
        return None


def _aliases(path: Path, factory: str, variable: str, sources) -> frozenset[str]:
    try:
        tree = _parse(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError):
        return frozenset()
    place = _returned_at(tree, factory, variable) if tree is not None else None
    if place is None:
        return frozenset()
    names: set[str] = set()
    trees = [t for t in (_parse(text, p) for p, text in sources if f"{factory}(" in text) if t is not None]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and _calls(node.value, factory):
                for target in node.targets:
                    name = _target_name(target, place)
                    if name:
                        names.add(name)
    if not names:
        return frozenset()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg and _last_name(node.value) in names:
                names.add(node.arg)
    names.discard(variable)
    return frozenset(names)


def _returned_at(tree: ast.Module, factory: str, variable: str):
    """The place of ``variable`` in what the def ``factory`` returns: -1 alone, i in a tuple, None."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == factory:
            for stmt in scope_nodes(node):
                if isinstance(stmt, ast.Return) and stmt.value is not None:
                    if isinstance(stmt.value, ast.Name) and stmt.value.id == variable:
                        return -1
                    if isinstance(stmt.value, ast.Tuple):
                        for i, elt in enumerate(stmt.value.elts):
                            if isinstance(elt, ast.Name) and elt.id == variable:
                                return i
    return None


def _calls(value: ast.expr, factory: str) -> bool:
    if not isinstance(value, ast.Call):
        return False
    return _last_name(value.func) == factory


def _target_name(target: ast.expr, place: int) -> str | None:
    if place >= 0:
        if not isinstance(target, (ast.Tuple, ast.List)) or place >= len(target.elts):
            return None
        target = target.elts[place]
    return _last_name(target)


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
