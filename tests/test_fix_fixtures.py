"""Fixture tests: each tests/fixtures/fix/NAME.in.py fixes to NAME.out.py, and a second run changes nothing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.fixers.api import fix_paths

FIXTURES = Path(__file__).parent / "fixtures" / "fix"
CASES = sorted(p.name[: -len(".in.py")] for p in FIXTURES.glob("*.in.py"))


def _run(tmp_path: Path, name: str, strategy: str = "tensor-index") -> tuple[Path, object]:
    target = tmp_path / f"{name}.py"
    shutil.copy(FIXTURES / f"{name}.in.py", target)
    return target, fix_paths([str(target)], strategy=strategy, use_analysis=False)


@pytest.mark.parametrize("name", CASES)
def test_fixture(tmp_path, name):
    target, report = _run(tmp_path, name)
    assert not report.errors
    assert target.read_text() == (FIXTURES / f"{name}.out.py").read_text()
    compile(target.read_text(), str(target), "exec")  # still valid Python


@pytest.mark.parametrize("name", CASES)
def test_fixture_idempotent(tmp_path, name):
    target, _ = _run(tmp_path, name)
    before = target.read_bytes()
    again = fix_paths([str(target)], use_analysis=False)
    assert not again.changed and target.read_bytes() == before


@pytest.mark.parametrize("name", CASES)
def test_out_is_a_fixed_point(tmp_path, name):
    target = tmp_path / f"{name}.py"
    shutil.copy(FIXTURES / f"{name}.out.py", target)
    assert not fix_paths([str(target)], use_analysis=False).changed


def test_select_ignore(tmp_path):
    target, report = _run(tmp_path, "slice_assign_index_copy")
    shutil.copy(FIXTURES / "slice_assign_index_copy.in.py", target)
    report = fix_paths([str(target)], select=["TCS003"], use_analysis=False)
    assert [n.split()[0] for n in report.notes] == ["TCS003"]
    shutil.copy(FIXTURES / "slice_assign_index_copy.in.py", target)
    report = fix_paths([str(target)], ignore=["TCS003"], use_analysis=False)
    assert [n.split()[0] for n in report.notes] == ["TCS001"]


def test_recipe_graph_break_strategy(tmp_path):
    target, report = _run(tmp_path, "kvcache_recipe", strategy="graph-break")
    text = target.read_text()
    assert text.count("@torch.compiler.disable") == 4 and "index_copy_" not in text
    assert not fix_paths([str(target)], strategy="graph-break", use_analysis=False).changed


def test_fixer_does_not_import_torch(tmp_path):
    import subprocess

    code = ("import sys, shutil; from flake8_compile_safe.fixers.api import fix_paths; "
            f"shutil.copy({str(FIXTURES / 'kvcache_recipe.in.py')!r}, {str(tmp_path / 'k.py')!r}); "
            f"fix_paths([{str(tmp_path / 'k.py')!r}], use_analysis=False); "
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
