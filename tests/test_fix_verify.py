"""``compile-safe-fix --verify MODULE:FACTORY``: the fix is kept only when the workload gives the same
outputs on the fixed tree as on the original (eager and compiled, separate processes); otherwise
nothing is written, the exit status is 4 and the summary names the file."""

from __future__ import annotations

import shutil
from argparse import Namespace
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import clear_cache
from flake8_compile_safe.fixers import api
from flake8_compile_safe.fixers.cli import main

pytestmark = pytest.mark.torch
MODELS = Path(__file__).parent / "fixtures" / "models"


@pytest.fixture
def tree(tmp_path):
    pytest.importorskip("torch")
    root = tmp_path / "src"
    shutil.copytree(MODELS / "verify", root)
    (root / "pyproject.toml").write_text("[project]\nname = 'growcache'\n")
    clear_cache()
    yield root
    clear_cache()


def _args(root: Path, **kw) -> Namespace:
    base = dict(verify="growcache.factory:build", verify_path=str(root), verify_arg=[], verify_atol=1e-5,
                verify_backend="analysis", verify_timeout=600)
    return Namespace(**{**base, **kw})


def test_verified_fix_is_kept_and_reported(tree, capsys):
    model = tree / "growcache" / "model.py"
    before = model.read_bytes()
    rc = main([str(tree / "growcache"), "--unsafe-fixes", "--verify", "growcache.factory:build",
               "--verify-path", str(tree), "--verify-arg", "steps=3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "verify: outputs match: the fix is kept" in out
    assert "max abs diff, fixed vs original: eager 0.0e+00" in out
    for label in ("graphs", "graph breaks", "frame skips", "recompiles", "predicted CUDA-graph skips"):
        assert f"  {label} " in out
    assert model.read_bytes() != before and b"_grow_keys" in model.read_bytes()


def test_fix_that_changes_behaviour_is_refused_and_nothing_written(tree, capsys):
    """Past max_len the preallocated cache raises where the original grew: refused, file named."""
    model = tree / "growcache" / "model.py"
    before = model.read_bytes()
    rc = main([str(tree / "growcache"), "--unsafe-fixes", "--verify", "growcache.factory:build",
               "--verify-path", str(tree), "--verify-arg", "steps=9"])
    err = capsys.readouterr().err
    assert rc == 4, err
    assert "verify: REFUSED: the workload fails on the fixed tree" in err
    assert "growcache/model.py" in err and "the original files are unchanged" in err
    assert model.read_bytes() == before


def test_changed_outputs_are_refused(tree):
    """A rewrite that changes values (here: a planted bug) is caught by the output comparison."""
    report = api.plan([str(tree / "growcache")], unsafe_fixes=True)
    (changed,) = report.changed
    changed.new_text = changed.new_text.replace("return (q @ keys.T).softmax(-1) @ keys",
                                                "return (q @ keys.T).softmax(-1) @ keys * 1.001")
    from flake8_compile_safe.fixers.verify import verify

    verdict = verify(report, _args(tree, verify_arg=["steps=2"]))
    assert not verdict.kept and "outputs differ by" in verdict.why
    assert verdict.culprits == [str(tree / "growcache" / "model.py")]
    assert verdict.diff("eager") > 1e-5


def test_bad_factory_is_a_usage_error(tree, capsys):
    rc = main([str(tree / "growcache"), "--unsafe-fixes", "--verify", "growcache.factory:nope",
               "--verify-path", str(tree)])
    assert rc == 2
    assert "has no 'nope'" in capsys.readouterr().err
    assert b"_grow_keys" not in (tree / "growcache" / "model.py").read_bytes()
