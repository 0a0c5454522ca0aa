"""Model families as an extension point: the registry, and a generic core that names no model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.families import DEFAULT_FAMILY, all_families, get_family
from flake8_compile_safe.fixers.recipes import all_recipes

REPO = Path(__file__).resolve().parents[1]
GENERIC = [REPO / "fixers", REPO / "flake8_compile_safe" / "validate", *(REPO / "flake8_compile_safe").glob("*.py")]


def test_registry_lists_the_default_family_with_its_parts():
    names = [f.name for f in all_families()]
    assert DEFAULT_FAMILY in names and names == sorted(names)
    toto = get_family("toto")
    assert toto.factory() == toto.factories["tiny"] == "flake8_compile_safe.families.toto.factory:tiny"
    assert toto.factory("base").endswith(":base")
    with pytest.raises(KeyError, match="has no workload 'huge'"):
        toto.factory("huge")
    with pytest.raises(KeyError, match="unknown model family 'nope'"):
        get_family("nope")


def test_fixer_finds_family_recipes_through_the_registry():
    recipes = {type(r).__module__ for r in all_recipes()}
    expected = {f.recipe.split(":")[0] for f in all_families() if f.recipe}
    assert expected and expected <= recipes
    assert "flake8_compile_safe.families.toto.recipe" in recipes


def test_listing_families_imports_nothing_heavy():
    code = ("import sys; from flake8_compile_safe.families import all_families; all_families();"
            "print(sorted(m for m in ('torch', 'libcst', 'toto') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_generic_core_names_no_model():
    families = [f.name for f in all_families()] + [f.package for f in all_families()]
    offenders = []
    for root in GENERIC:
        for path in ([root] if root.is_file() else sorted(root.rglob("*.py"))):
            if path.name == "demo.py":  # the demo runs the default family on purpose
                continue
            text = path.read_text().lower()
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in families if name.lower() in text]
    assert not offenders, offenders


def test_recipe_note_finds_the_class_by_its_whole_name():
    import libcst as cst

    from flake8_compile_safe.fixers.recipes import RecipeResult

    module = cst.parse_module("class TransformerLayer:\n    pass\n\n\nclass Transformer(object):\n    pass\n")
    result = RecipeResult()
    result.note("TCS002", "t.py", module, "Transformer", "what", "toto")
    result.note("TCS002", "t.py", module, "TransformerLayer", "what", "toto")
    assert [a.line for a in result.applied] == [5, 1]
    result.decline("toto", "static decode not applied (why)")
    assert result.declined == ["recipe toto: static decode not applied (why)"]
