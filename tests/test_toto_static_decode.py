"""Issue 9: ``compile-safe-fix --strategy tensor-index`` gives Toto a fully static decode step.

On a copy of the real toto-ts==0.2.0 source (fetched, never committed):

1. the recipe's static form by structure: per-layer cache buffers, no Python length mirror (a host
   phase flag instead), scalers with ``stream``, no cache-length read left in the compiled model
   code, a decoding loop that feeds one fixed-shape step and keeps its cache between calls;
2. all or nothing: a scaler the recipe cannot stream leaves the ``tensor-index`` form (mirror kept);
3. dynamo's verdict on the fixed tree through Toto's own forecaster (benchmarks/toto_static_decode.py
   verdict, analysis backend): two graphs, the decode graph takes no SymInt input, one input tuple
   and fixed static-input addresses over every call (0 predicted CUDA-graph re-records), and the
   forecast equals the original's (max abs diff <= 1e-5).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.fixers.cli import main
from helpers import toto_source_copy

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "toto_static_decode.py"
LENGTH_READS = (".current_len(", ".seq_len(")


@pytest.fixture(scope="module")
def fixed_toto(tmp_path_factory):
    src, root = toto_source_copy(tmp_path_factory, "toto_static")
    assert main([str(root), "-q"]) == 0
    return src, root


def _class(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def test_static_form_by_structure(fixed_toto):
    _, root = fixed_toto
    model = root / "toto" / "model"
    cache = _class(model / "util.py", "KVCache")
    text = ast.unparse(cache)
    assert "_current_len" not in text  # no Python length mirror
    assert "prefilled" in _methods(cache) and "scaler_stats" in text
    init = ast.unparse(_methods(cache)["__post_init__"])
    assert "for _ in range(time_layer_count)]" in init  # one buffer per layer
    assert "torch._assert_async(" in ast.unparse(_methods(cache)["append"])
    for name in ("backbone.py", "transformer.py"):
        compiled_path = (model / name).read_text()
        assert not [read for read in LENGTH_READS if read in compiled_path], name
    assert "self.scaler.stream(" in (model / "backbone.py").read_text()
    for cls in ("StdMeanScaler", "CausalStdMeanScaler", "CausalPatchStdMeanScaler"):
        assert "stream" in _methods(_class(model / "scaler.py", cls)), cls
    forecaster = _class(root / "toto" / "inference" / "forecaster.py", "TotoForecaster")
    methods = _methods(forecaster)
    assert {"_take_kv_cache", "_keep_kv_cache", "_fixed_shape"} <= set(methods)
    for name in ("generate_mean", "generate_samples"):
        body = ast.unparse(methods[name])
        assert "allocate_kv_cache" not in body and "self._take_kv_cache(" in body, name
        assert "inputs=step_" in body and "next_step.copy_(samples)" in body, name
        assert "timestamp_seconds = torch.cat" not in body  # the dead timestamp loop is gone
    assert main([str(root), "--check", "-q"]) == 0  # idempotent


def test_static_decode_is_all_or_nothing(tmp_path, capsys):
    try:
        from flake8_compile_safe.families.toto import copy_toto

        root = copy_toto(tmp_path / "src")
    except Exception as exc:
        pytest.skip(f"toto-ts source not available: {exc}")
    scaler = root / "toto" / "model" / "scaler.py"
    scaler.write_text(scaler.read_text() + (
        "\n\nclass MedianScaler(Scaler):\n"
        "    def __call__(self, data, padding_mask, weights, prefix_length=None):\n"
        "        loc = data.median(-1, keepdim=True).values\n"
        "        return data - loc, loc, torch.ones_like(loc)\n"))
    assert main([str(root)]) == 0
    # the user is told which step declined and why
    out = capsys.readouterr().out
    assert "compile-safe-fix: recipe toto: static decode not applied (" in out
    assert "MedianScaler" in out and "the tensor-index form stays" in out
    util = (root / "toto" / "model" / "util.py").read_text()
    assert "_current_len" in util and "def prefilled" not in util  # the tensor-index form, whole
    assert "def stream" not in scaler.read_text()
    assert "_take_kv_cache" not in (root / "toto" / "inference" / "forecaster.py").read_text()


def _verdict(src, *args) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", TORCH_LOGS="-all")
    out = subprocess.run([sys.executable, str(BENCH), "verdict", "--source", str(src), *args],
                         capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index("{"):])


@pytest.mark.torch
def test_decode_graph_takes_no_symint_and_forecast_matches(fixed_toto, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("einops")
    src, root = fixed_toto
    ref = tmp_path / "orig.pt"
    _verdict(src, "--eager-only", "--save-forecast", str(ref), "--steps", "6", "--warmup", "1")
    v = _verdict(root, "--backend", "analysis", "--runs", "1", "--warmup", "1", "--steps", "6", "--reference", str(ref))
    print(json.dumps({k: v[k] for k in ("unique_graphs", "graph_breaks", "frame_skips", "recompiles",
                                        "predicted_cudagraph_rerecords", "static_address_changes")}))
    assert v["graph_breaks"] == 0 and v["frame_skips"] == 0
    assert v["unique_graphs"] == 2 and v["recompiles_after_warmup"] == 0
    decode = v["decode_graph"]
    assert decode["calls"] >= 2 * 5  # every decode step of both compiled forecasts, through one graph
    assert decode["symint_inputs"] == 0 and decode["distinct_symint_tuples"] == 1
    assert v["predicted_cudagraph_rerecords"] == 0 and v["static_address_changes"] == 0
    assert v["predicted_cudagraph_skips"] == 0
    assert v["max_abs_diff_eager_vs_reference"] <= 1e-5
    assert v["max_abs_diff_compiled_vs_reference"] <= 1e-5
