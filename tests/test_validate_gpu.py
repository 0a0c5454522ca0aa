"""GPU checks of compile-safe-validate: real CUDA-graph skips (reduce-overhead) on the fixed Toto."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.torch]
torch = pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")
if not torch.cuda.is_available():
    pytest.skip("needs CUDA", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]


def _validate(tmp_path, *args):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.cli", *args, "--json", str(out),
                           "--workdir", str(tmp_path / "w")], capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert out.is_file(), proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_fixed_reduce_overhead_no_cudagraph_skips(tmp_path):
    doc = _validate(tmp_path, "--device", "cuda", "--config", "tiny", "--mode", "default", "--mode", "reduce-overhead")
    by = {(r["variant"], r["mode"]): r for r in doc["results"]}
    fixed = by[("fixed", "reduce-overhead")]
    assert doc["device"] == "cuda"
    assert fixed["cudagraph_skips"] == 0
    assert fixed["predicted_cudagraph_skips"] == 0
    assert fixed["graph_breaks"] == 0 and fixed["frame_skips"] == 0
    assert fixed["recompiles_after_warmup"] == 0
    assert fixed["extra"]["mae_diff"] < 1e-3
    assert by[("original", "default")]["graph_breaks"] > 0


def test_cuda_peak_memory(tmp_path):
    doc = _validate(tmp_path, "--no-fix", "--device", "cuda", "--backend", "analysis", "--runs", "1",
                    "--warmup", "1", "--steps", "2")
    assert all(r["peak_mem_mb"] > 0 for r in doc["results"])
