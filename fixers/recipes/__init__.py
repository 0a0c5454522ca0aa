"""Recipes: coordinated multi-file rewrites for a recognised model family.

A recipe recognises its family by structure (class and method shapes, not file names) and
rewrites the files it needs together. Recipes live in their family's folder
(``flake8_compile_safe/families/<name>/``, named by ``Family.recipe``) and are found through
:func:`flake8_compile_safe.families.all_families`; :func:`register` adds one from elsewhere.
:func:`all_recipes` is what the fixer runs. Nothing here names a model.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field

import libcst as cst

from ..outcome import AppliedFix


@dataclass
class RecipeResult:
    """New modules by path, and one record per rewrite."""

    modules: dict[str, cst.Module] = field(default_factory=dict)
    applied: list[AppliedFix] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)  # paths the recipe recognised: the rule fixes keep off
    declined: list[str] = field(default_factory=list)  # "recipe NAME: what was not rewritten, and why"

    def note(self, code: str, path: str, module: cst.Module, class_name: str, what: str, recipe: str) -> None:
        """Record one rewrite of ``class_name`` (its line is looked up in ``module``)."""
        # the whole name: ``class Transformer`` must not land on an earlier ``class TransformerLayer``
        header = re.compile(rf"\s*class\s+{re.escape(class_name)}\s*[(:]")
        line = next((i for i, text in enumerate(module.code.splitlines(), 1) if header.match(text)), 1)
        self.applied.append(AppliedFix(code, path, line, f"recipe:{recipe}", what))

    def decline(self, recipe: str, why: str) -> None:
        """Record a rewrite the recipe recognised but left undone, with why (printed to the user)."""
        self.declined.append(f"recipe {recipe}: {why}")


class Recipe:
    name = ""
    strategies: tuple[str, ...] = ("tensor-index", "graph-break")
    codes: tuple[str, ...] = ()  # TCS codes the recipe fixes: it runs when any is selected

    def candidate(self, text: str, tree: ast.Module | None) -> bool:
        """Cheap check before any libcst parse: could this file be part of the family?

        ``tree`` is ``ast.parse(text)``, or None when ``ast`` could not parse it. Must accept every
        file :meth:`apply` would rewrite or own; only candidates are parsed and passed to ``apply``.
        The default accepts every file.
        """
        return True

    def apply(self, modules: dict[str, cst.Module], strategy: str) -> RecipeResult:
        """Rewrite ``modules`` (path -> parsed module); return only the modules that changed."""
        raise NotImplementedError


_REGISTRY: dict[str, Recipe] = {}
_families_loaded = False


def register(recipe: Recipe) -> Recipe:
    _REGISTRY[recipe.name] = recipe
    return recipe


def _load_family_recipes() -> None:
    """Instantiate each family's ``Family.recipe`` (``"module:Class"``) once."""
    global _families_loaded
    if _families_loaded:
        return
    _families_loaded = True
    from flake8_compile_safe.families import all_families

    for family in all_families():
        if family.recipe:
            module_name, _, class_name = family.recipe.partition(":")
            recipe = getattr(importlib.import_module(module_name), class_name)()
            _REGISTRY.setdefault(recipe.name, recipe)


def all_recipes() -> list[Recipe]:
    _load_family_recipes()
    return list(_REGISTRY.values())


def get(name: str) -> Recipe:
    _load_family_recipes()
    return _REGISTRY[name]
