"""GPU checks of compile-safe-validate: real CUDA-graph skips (reduce-overhead) on the fixed Toto."""

from __future__ import annotations

import importlib.util
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


@pytest.mark.skipif(importlib.util.find_spec("fixers.cli") is None, reason="fixers.cli not importable")
def test_fixed_reduce_overhead_no_cudagraph_skips(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.cli", "--device", "cuda",
                           "--config", "tiny", "--mode", "default", "--mode", "reduce-overhead",
                           "--json", str(out), "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert out.is_file(), proc.stderr[-3000:]
    by = {(r["variant"], r["mode"]): r for r in json.loads(out.read_text())}
    fixed = by[("fixed", "reduce-overhead")]
    assert fixed["device"] == "cuda"
    assert fixed["cudagraph_skips"] == 0
    assert fixed["predicted_cudagraph_skips"] == 0
    assert fixed["graph_breaks"] == 0 and fixed["frame_skips"] == 0
    assert fixed["recompiles_after_warmup"] == 0
    assert fixed["mae_diff"] < 1e-3
    assert by[("original", "default")]["graph_breaks"] > 0


def test_harness_cuda_peak_memory(tmp_path):
    from flake8_compile_safe.families.toto import fetch_toto

    out = tmp_path / "h.json"
    subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.harness", "--source", str(fetch_toto()),
                    "--device", "cuda", "--backend", "analysis", "--runs", "1", "--steps", "2",
                    "--json", str(out)], check=True, cwd=REPO, timeout=900)
    rows = json.loads(out.read_text())["rows"]
    assert all(r["peak_mem_mb"] > 0 for r in rows)
