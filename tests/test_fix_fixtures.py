"""Fixture tests: each tests/fixtures/fix/NAME.in.py fixes to NAME.out.py through the default path (the
linter's findings), a second run changes nothing, and NAME.out.py is a fixed point.

A first line ``# fix-options: --strategy graph-break --unsafe-fixes`` gives the fixer's options. Fixtures
that define ``workload()`` (``(model, run)``, the compile-safe-validate --model interface) are also run
under dynamo, before and after (:mod:`test_fix_dynamo`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import clear_cache
from flake8_compile_safe.fixers.api import fix_paths

FIXTURES = Path(__file__).parent / "fixtures" / "fix"
CASES = sorted(p.name[: -len(".in.py")] for p in FIXTURES.glob("*.in.py"))


def options(name: str) -> dict:
    first = (FIXTURES / f"{name}.in.py").read_text().splitlines()[0]
    opts = first.split("fix-options:", 1)[1].split() if "fix-options:" in first else []
    return {"strategy": opts[opts.index("--strategy") + 1] if "--strategy" in opts else "tensor-index",
            "unsafe_fixes": "--unsafe-fixes" in opts}


def project(tmp_path: Path, name: str, suffix: str = "in") -> Path:
    """The fixture as the only module of a project (its own root for the analysis)."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    target = tmp_path / f"{name}.py"
    shutil.copy(FIXTURES / f"{name}.{suffix}.py", target)
    clear_cache()
    return target


def run_fixer(target: Path, name: str):
    clear_cache()
    return fix_paths([str(target)], **options(name))


@pytest.mark.parametrize("name", CASES)
def test_fixture(tmp_path, name):
    target = project(tmp_path, name)
    report = run_fixer(target, name)
    assert report.analysis == "findings"
    assert not report.errors
    assert target.read_text() == (FIXTURES / f"{name}.out.py").read_text()
    compile(target.read_text(), str(target), "exec")  # still valid Python


@pytest.mark.parametrize("name", CASES)
def test_fixture_idempotent(tmp_path, name):
    target = project(tmp_path, name)
    run_fixer(target, name)
    before = target.read_bytes()
    again = run_fixer(target, name)
    assert not again.changed and target.read_bytes() == before


@pytest.mark.parametrize("name", CASES)
def test_out_is_a_fixed_point(tmp_path, name):
    target = project(tmp_path, name, "out")
    assert not run_fixer(target, name).changed


def test_without_findings_only_recipes_apply(tmp_path):
    """--no-analysis: the rule fixes need findings; a file no recipe owns is left alone."""
    target = project(tmp_path, "tcs003_index_copy")
    report = fix_paths([str(target)], use_analysis=False)
    assert report.analysis == "off" and not report.changed


def test_select_ignore(tmp_path):
    target = project(tmp_path, "tcs002_keep_tensor")
    report = fix_paths([str(target)], select=["TCS001"], write=False)
    assert {a.code for a in report.applied} == {"TCS001"}
    report = fix_paths([str(target)], ignore=["TCS001"], write=False)
    assert {a.code for a in report.applied} == {"TCS002", "TCS003"}


def test_recipe_graph_break_strategy(tmp_path):
    target = project(tmp_path, "kvcache_recipe")
    fix_paths([str(target)], strategy="graph-break")
    text = target.read_text()
    assert text.count("@torch.compiler.disable") == 4 and "index_copy_" not in text
    clear_cache()
    assert not fix_paths([str(target)], strategy="graph-break").changed


def test_fixer_does_not_import_torch(tmp_path):
    target = project(tmp_path, "tcs002_keep_tensor")
    code = ("import sys; from flake8_compile_safe.fixers.api import fix_paths; "
            f"r = fix_paths([{str(target)!r}]); assert r.changed; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.torch
def test_recipe_fixture_same_values():
    """The recipe-shaped fixture computes the same attention before and after, eagerly."""
    torch = pytest.importorskip("torch")
    ns_in, ns_out = {}, {}
    exec(compile((FIXTURES / "kvcache_recipe.in.py").read_text(), "in", "exec"), ns_in)
    exec(compile((FIXTURES / "kvcache_recipe.out.py").read_text(), "out", "exec"), ns_out)
    results = []
    for ns in (ns_in, ns_out):
        torch.manual_seed(0)
        cache = ns["LayerCache"](layers=4, batch=1, heads=2, length=8, head_dim=4)
        attn = ns["CachedAttention"]()
        outs = []
        for n in (3, 1, 1, 1):
            q, k, v = (torch.randn(1, 2, n, 4) for _ in range(3))
            q, k, v, off = attn.positional_embedding(q, k, v, cache, 1)
            outs.append(attn.run_attention(None, q, k, v, off, 0.0, n))
        results.append(torch.cat(outs, dim=2))
    assert (results[0] - results[1]).abs().max() < 1e-6
