"""The static-recall measuring set: each family folder declares a usable FAMILY without torch.

The workloads themselves need the real packages and torch (``benchmarks/dynamo_probe.py``,
docs/recall.md); here only what the registry and the harness rely on is checked, cheaply.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECALL_FAMILIES = ("whisper", "timesfm", "x_transformers", "transformers", "llama_models", "moshi",
                   "gluonts", "encodec", "rwkv", "litgpt", "bark", "mambapy")
# Families whose workload imports nothing but torch from outside the package (bark loads bark/model.py alone).
TORCH_ONLY = {"bark", "mambapy"}


@pytest.mark.parametrize("name", RECALL_FAMILIES)
def test_family_init_imports_without_torch_or_the_model_package(name):
    # A meta-path hook that refuses torch and the model package: the registry imports every
    # family's __init__, and must work where neither is installed.
    code = f"""
import importlib.abc, json, sys
BLOCKED = {{"torch", "numpy", "libcst"}}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError("blocked: " + fullname)
sys.meta_path.insert(0, Refuse())
mod = importlib.import_module("flake8_compile_safe.families.{name}")
BLOCKED.add(mod.FAMILY.package)
f = mod.FAMILY
print(json.dumps({{"name": f.name, "package": f.package, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in ("torch", f.package))}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["name"] == name
    assert info["heavy"] == []


@pytest.mark.parametrize("name", RECALL_FAMILIES)
def test_family_declaration_is_complete(name):
    from flake8_compile_safe.families import Family

    family = importlib.import_module(f"flake8_compile_safe.families.{name}").FAMILY
    assert isinstance(family, Family)
    assert re.fullmatch(r"[0-9][0-9A-Za-z.]*", family.version), "version must be pinned exactly"
    assert family.sentinel.startswith(family.package + "/")
    assert len(family.about) > 80, "about must say what dynamo trips on"
    assert family.factories and (family.runtime_deps or name in TORCH_ONLY)


@pytest.mark.parametrize("name", RECALL_FAMILIES)
def test_factories_name_functions_that_exist(name):
    family = importlib.import_module(f"flake8_compile_safe.families.{name}").FAMILY
    for workload, spec in family.factories.items():
        module, _, func = spec.partition(":")
        assert module.startswith(f"flake8_compile_safe.families.{name}."), spec
        path = ROOT / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(), filename=str(path))
        top = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert func in top, f"{path.name} defines no {func}() for workload {workload!r}"
        assert not top[func].args.args, f"{func}() must be callable with no arguments"
        # Heavy imports (torch, the model package) live inside functions, not at module level.
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("torch", family.package) for n in names), ast.unparse(node)


def test_recall_extra_lists_each_familys_runtime_deps():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["recall"]
    declared = {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in extra}
    for name in RECALL_FAMILIES:
        family = importlib.import_module(f"flake8_compile_safe.families.{name}").FAMILY
        assert family.package not in declared, "the model package's source comes from the registry's archive"
        for dep in family.runtime_deps:
            base = re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower().replace("_", "-")
            if base in ("lightning",):  # the validate extra's
                continue
            assert base in declared, f"{name}: {dep} missing from the recall extra"
